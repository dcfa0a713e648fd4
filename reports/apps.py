from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: these modules use models, which exist only once the apps are loaded.
        from failover import maintenance, recording
        from reports import checks, health, signals  # noqa: F401  (checks register themselves)
        from reports.recording import StoreRecorder, prune_aggregates

        signals.connect()
        # What the engine (failover) hands on about each treated transformation (failover/recording.py),
        # and what failover's prune removes with old cycles (failover/maintenance.py).
        recording.register(StoreRecorder)
        maintenance.register_pruner(prune_aggregates)

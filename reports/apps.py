from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reports import checks, health, signals  # noqa: F401  (checks register themselves)

        signals.connect()

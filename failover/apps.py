from django.apps import AppConfig


class FailoverConfig(AppConfig):
    name = "failover"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The domain's health checks register themselves; workers record heartbeats (signals).
        from failover import health, heartbeats  # noqa: F401

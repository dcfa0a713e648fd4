from django.apps import AppConfig


class DigestsConfig(AppConfig):
    name = "reports.digests"
    label = "digests"
    verbose_name = "E-mail digests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from failover.models import Policy, RecoveryPolicy
        from reports.digests import health  # noqa: F401  (registers the mail check)
        from reports.digests.mailto import on_policy_saved

        post_save.connect(on_policy_saved, sender=Policy, dispatch_uid="digests.import_mailto")
        post_save.connect(on_policy_saved, sender=RecoveryPolicy, dispatch_uid="digests.import_recovery_mailto")

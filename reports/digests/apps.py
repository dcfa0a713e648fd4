from django.apps import AppConfig


class DigestsConfig(AppConfig):
    name = "reports.digests"
    label = "digests"
    verbose_name = "E-mail digests"
    default_auto_field = "django.db.models.BigAutoField"

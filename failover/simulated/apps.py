from django.apps import AppConfig


class SimDiracConfig(AppConfig):
    name = "failover.simulated"
    label = "simdirac"
    verbose_name = "Simulated DIRAC"

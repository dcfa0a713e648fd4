"""Smallest Django settings that can run ``dirac check`` in a subprocess of the DIRAC tests,
independent of the product's own settings module."""

SECRET_KEY = "dirac-check-tests-only"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "failover"]
DATABASES = {}
USE_TZ = True

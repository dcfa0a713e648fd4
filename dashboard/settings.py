"""Django settings, all from environment variables (README lists each one)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from dashboard.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    # A stable per-checkout key so sessions survive restarts of the embedded demo; production
    # sets SECRET_KEY explicitly.
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "failover",
    "failover.simulated",
    "reports",
    "reports.digests",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# -- databases ---------------------------------------------------------------------------------
# The dashboard's own data, and the simulated DIRAC's tables in a database of their own: a real
# DIRAC is another system, so the simulator must not share our transactions (a crash between a
# DIRAC write and our log must look the same with both backends).
DATABASES = {
    "default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dashboard.sqlite3'}"),
    "simdirac": env_database("SIMDIRAC_DATABASE_URL", f"sqlite:///{VAR_DIR / 'simdirac.sqlite3'}"),
}
for _db in DATABASES.values():
    if _db["ENGINE"].endswith("sqlite3"):
        # WAL lets the web server read while a worker writes; the timeout waits for a writer
        # instead of failing at once with "database is locked".
        # IMMEDIATE transactions take the write lock when they begin, so concurrent workers wait
        # for each other (up to the timeout) instead of failing at once when a read inside a
        # transaction turns into a write.
        _db.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
DATABASE_ROUTERS = ["failover.simulated.router.SimDiracRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- DIRAC -------------------------------------------------------------------------------------
DIRAC_BACKEND = env_choice("DIRAC_BACKEND", "simulated", ["simulated", "dirac"])
# Simulated DIRAC: latency injected per call (milliseconds) and faults (see README).
SIMDIRAC_LATENCY_MS = env_float("SIMDIRAC_LATENCY_MS", 0.0, minimum=0)
SIMDIRAC_FAULTS = env_str("SIMDIRAC_FAULTS", "")
# Calls to DIRAC: how often a failed read is retried, and the pause before the first retry.
DIRAC_RETRIES = env_int("DIRAC_RETRIES", 2, minimum=0)
DIRAC_RETRY_BACKOFF = env_float("DIRAC_RETRY_BACKOFF", 0.5, minimum=0)
DIRAC_TIMEOUT = env_float("DIRAC_TIMEOUT", 120.0, minimum=1)

# -- failover ----------------------------------------------------------------------------------
# A transformation lock is a lease: a crashed holder's lock expires after this many seconds.
FAILOVER_LOCK_SECONDS = env_int("FAILOVER_LOCK_SECONDS", 900, minimum=10)
# Transformations read together in one batch of backend calls during a cycle.
FAILOVER_BATCH_SIZE = env_int("FAILOVER_BATCH_SIZE", 200, minimum=1)

# -- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Our own transport on kombu's filesystem one (dashboard/broker.py): atomic writes, a taken
    # message kept until acknowledged and restored when its worker is gone, bad files set aside.
    CELERY_BROKER_TRANSPORT = "dashboard.broker:Transport"
    for _sub in ("queue", "processing", "corrupt", "tmp", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processing_folder": str(_broker_dir / "processing"),
        "corrupt_folder": str(_broker_dir / "corrupt"),
        "tmp_folder": str(_broker_dir / "tmp"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": env_float("CELERY_POLLING_INTERVAL", 0.1, minimum=0.01),
        # A message file that does not parse is retried this long, then set aside into corrupt/.
        "corrupt_grace": env_float("CELERY_BROKER_CORRUPT_GRACE", 5.0, minimum=0),
        # How often a consumer looks for taken messages whose worker is gone.
        "restore_interval": env_float("CELERY_BROKER_RESTORE_INTERVAL", 5.0, minimum=0.1),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat asks whether a cycle is due; the cycle itself runs every policy PollingTime.
FAILOVER_TICK_SECONDS = env_float("FAILOVER_TICK_SECONDS", 10.0, minimum=0.5)

# -- aggregates --------------------------------------------------------------------------------
# OpenSearch (optional): with OPENSEARCH_URL set, aggregates and action-log entries also go to
# OpenSearch (through the database outbox) and the report and plots read from it.
OPENSEARCH_URL = env_str("OPENSEARCH_URL", "")
OPENSEARCH_USER = env_str("OPENSEARCH_USER", "")
OPENSEARCH_PASSWORD = env_str("OPENSEARCH_PASSWORD", "")
# A CA bundle (PEM) to verify the server's certificate; empty: the system's trust store.
OPENSEARCH_CA_CERTS = env_str("OPENSEARCH_CA_CERTS", "")
# Our index names start with this: <prefix>-wmshistory-YYYY-MM-DD, <prefix>-snapshots-..., <prefix>-actions-...
OPENSEARCH_INDEX_PREFIX = env_str("OPENSEARCH_INDEX_PREFIX", "failover")
# Seconds per request; a bulk request that times out is retried this many times.
OPENSEARCH_TIMEOUT = env_float("OPENSEARCH_TIMEOUT", 10.0, minimum=0.1)
OPENSEARCH_RETRIES = env_int("OPENSEARCH_RETRIES", 3, minimum=0)
# Send each transformation's documents right after its commit (one small bulk request each); off:
# only the reports.drain_outbox task and `manage.py opensearch flush-outbox` send, in big batches.
OPENSEARCH_SEND_ON_COMMIT = env_bool("OPENSEARCH_SEND_ON_COMMIT", True)
# Read-only, optional: an installation's DIRAC WMSHistory indices (e.g. "wmshistory_index-*"); latest()
# and series() then read them instead of ours. Writes still go to our indices.
OPENSEARCH_WMSHISTORY_SOURCE = env_str("OPENSEARCH_WMSHISTORY_SOURCE", "")

# -- e-mail ------------------------------------------------------------------------------------
# Optional. With EMAIL_HOST empty no digest is sent and nothing fails: subscriptions are kept, the
# worker logs it once and /health/ says "not configured".
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS on a plain connection (usually port 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # TLS from the first byte (usually port 465)
EMAIL_PORT = env_int("EMAIL_PORT", 465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
# Seconds before a silent mail server counts as a failure (retried), so a worker never hangs.
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 30.0, minimum=1)
# The sender of every digest (the agent's MailFrom default); an imported MailFrom is not used.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@ctao.dirac")
_email_errors = [
    message
    for wrong, message in (
        (EMAIL_USE_TLS and EMAIL_USE_SSL, "EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose one"),
        (EMAIL_PORT > 65535, f"EMAIL_PORT={EMAIL_PORT} is not a port (1 to 65535)"),
        ("@" not in DEFAULT_FROM_EMAIL, f"DEFAULT_FROM_EMAIL={DEFAULT_FROM_EMAIL!r} is not an e-mail address"),
    )
    if wrong
]
if _email_errors:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("; ".join(_email_errors))

# -- web ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
# plotly.js for the charts comes from the installed plotly package, served locally by whitenoise at
# /static/plotly/plotly.min.js (never a CDN); finders let whitenoise serve it without collectstatic.
_PLOTLY_DIR = Path(find_spec("plotly").submodule_search_locations[0])
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", _PLOTLY_DIR / "package_data")]
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # opensearch-py logs every request, and each failure with a traceback; the store logs one
    # line per outage itself.
    "loggers": {"opensearch": {"level": "ERROR"}},
}
# A running cycle older than this (or than PollingTime, whichever is longer) is declared stuck.
FAILOVER_STUCK_SECONDS = env_int("FAILOVER_STUCK_SECONDS", 1800, minimum=10)
# The lease of a cycle item and of the transformation lock a cycle or an action holds: renewed
# every third of it while its worker works, so a worker that is gone loses both after this long,
# and beat's next tick puts the item back on the queue.
FAILOVER_LEASE_SECONDS = env_int("FAILOVER_LEASE_SECONDS", 60, minimum=3)
if FAILOVER_LEASE_SECONDS >= FAILOVER_STUCK_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"FAILOVER_LEASE_SECONDS={FAILOVER_LEASE_SECONDS} must be shorter than "
        f"FAILOVER_STUCK_SECONDS={FAILOVER_STUCK_SECONDS}: a gone worker's work is put back after the "
        "lease, and a cycle is declared stuck only as the last resort"
    )
# Cycles and stored aggregates older than this are removed daily (the action log is kept).
FAILOVER_KEEP_DAYS = env_int("FAILOVER_KEEP_DAYS", 90, minimum=1)
# Fan a cycle out as one task per transformation (a chain per production), or run it as one task.
FAILOVER_FANOUT = env_bool("FAILOVER_FANOUT", True)

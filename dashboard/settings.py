"""Django settings, all from environment variables (README lists each one)."""

from __future__ import annotations

from pathlib import Path

from dashboard.env import (
    env_bool,
    env_choice,
    env_database,
    env_dir,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Created and tried for writing here: a folder that cannot be (VAR_DIR=/proc/nope) is one line.
VAR_DIR = env_dir("VAR_DIR", str(BASE_DIR / "var"))

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
# DIRAC's web portal (WebAppDIRAC), e.g. https://host/DIRAC: the jobs page links each job to its
# Job Monitor. Empty: no link.
DIRAC_WEBAPP_URL = env_url("DIRAC_WEBAPP_URL")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "failover",
    "failover.simulated",
    "reports",
    "reports.digests",
    "dashboard",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc, served from our static files (no CDN)
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
# Keep each web thread's and worker's connection between requests and tasks instead of opening one
# per request (for SQLite that is a file, two PRAGMAs and Django's SQL functions each time; for
# PostgreSQL a new backend process). Checked before reuse, so a restarted database costs one error.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
for _db in DATABASES.values():
    _db["CONN_MAX_AGE"] = DATABASE_CONN_MAX_AGE
    _db["CONN_HEALTH_CHECKS"] = DATABASE_CONN_MAX_AGE > 0
DATABASE_ROUTERS = ["failover.simulated.router.SimDiracRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- DIRAC -------------------------------------------------------------------------------------
DIRAC_BACKEND = env_choice("DIRAC_BACKEND", "simulated", ["simulated", "dirac"])
# Simulated DIRAC: latency injected per call (milliseconds) and faults (see README).
SIMDIRAC_LATENCY_MS = env_float("SIMDIRAC_LATENCY_MS", 0.0, minimum=0, maximum=600_000)
SIMDIRAC_FAULTS = env_str("SIMDIRAC_FAULTS", "")
# Calls to DIRAC: how often a failed read is retried, and the pause before the first retry.
DIRAC_RETRIES = env_int("DIRAC_RETRIES", 2, minimum=0, maximum=20)
DIRAC_RETRY_BACKOFF = env_float("DIRAC_RETRY_BACKOFF", 0.5, minimum=0, maximum=3600)
# DIRAC's BaseClient raises any RPC timeout below 120 s to 120 s: a smaller value would be
# accepted and silently not honoured, so it is refused (README, "DIRAC_TIMEOUT").
DIRAC_MIN_TIMEOUT = 120
DIRAC_TIMEOUT = env_float("DIRAC_TIMEOUT", 120.0, minimum=1, maximum=86_400)
if DIRAC_TIMEOUT < DIRAC_MIN_TIMEOUT:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"DIRAC_TIMEOUT={DIRAC_TIMEOUT:g} is below DIRAC's floor: its clients raise any timeout below "
        f"{DIRAC_MIN_TIMEOUT} s to {DIRAC_MIN_TIMEOUT} s, so use {DIRAC_MIN_TIMEOUT} or more"
    )
# Circuit breaker (failover/circuit.py): after this many consecutive calls that could not reach
# DIRAC, a cycle stops calling it and marks the remaining transformations skipped; 0: never.
DIRAC_CIRCUIT_FAILURES = env_int("DIRAC_CIRCUIT_FAILURES", 3, minimum=0, maximum=1000)

# -- failover ----------------------------------------------------------------------------------
# A transformation lock is a lease: a crashed holder's lock expires after this many seconds.
FAILOVER_LOCK_SECONDS = env_int("FAILOVER_LOCK_SECONDS", 900, minimum=10, maximum=86_400 * 365)
# How long an operator's action waits for a transformation's lock (a cycle treating it) before it
# reports the transformation locked.
FAILOVER_ACTION_LOCK_WAIT = env_int("FAILOVER_ACTION_LOCK_WAIT", 30, minimum=0, maximum=3_600)
# Transformations read together in one batch of backend calls during a cycle.
FAILOVER_BATCH_SIZE = env_int("FAILOVER_BATCH_SIZE", 200, minimum=1, maximum=100_000)
# DIRAC writes of one cycle in flight at once (failover/cycle/act.py: one transformation's writes stay
# in order, different transformations' overlap); 1: one after another.
FAILOVER_DIRAC_CONCURRENCY = env_int("FAILOVER_DIRAC_CONCURRENCY", 8, minimum=1, maximum=64)
# The mirror (failover/mirror.py): a delta read asks DIRAC for what changed since the previous
# read's start less this margin, for clocks that disagree (ours, DIRAC's database server's).
FAILOVER_MIRROR_MARGIN_SECONDS = env_int("FAILOVER_MIRROR_MARGIN_SECONDS", 120, minimum=0, maximum=86_400)
# A first fill of the mirror reads a batch's transformations in groups of about this many files
# (their file counts), written and let go group by group: a cold cycle's peak memory.
FAILOVER_FILL_FILES = env_int("FAILOVER_FILL_FILES", 50_000, minimum=1, maximum=100_000_000)
# Hours between full resyncs of a transformation's mirror (a full read compared with the mirror,
# drift reported and repaired); 0: every cycle.
FAILOVER_RESYNC_HOURS = env_float("FAILOVER_RESYNC_HOURS", 24, minimum=0, maximum=24 * 365)
# A transformation with nothing to plan is planned again at least this often (minutes), so that
# what follows the clock (insight's stall alerts, forecasts) moves on; 0: only on change.
FAILOVER_REPLAN_MINUTES = env_float("FAILOVER_REPLAN_MINUTES", 30, minimum=0, maximum=24 * 60 * 7)

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
        "polling_interval": env_float("CELERY_POLLING_INTERVAL", 0.1, minimum=0.01, maximum=60),
        # A message file that does not parse is retried this long, then set aside into corrupt/.
        "corrupt_grace": env_float("CELERY_BROKER_CORRUPT_GRACE", 5.0, minimum=0, maximum=3_600),
        # How often a consumer looks for taken messages whose worker is gone.
        "restore_interval": env_float("CELERY_BROKER_RESTORE_INTERVAL", 5.0, minimum=0.1, maximum=3_600),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat asks whether a cycle is due; the cycle itself runs every policy PollingTime.
FAILOVER_TICK_SECONDS = env_float("FAILOVER_TICK_SECONDS", 10.0, minimum=0.5, maximum=86_400)
# How often each worker records its heartbeat (the health check's "workers"); dead after three missed.
FAILOVER_HEARTBEAT_SECONDS = env_float("FAILOVER_HEARTBEAT_SECONDS", 10.0, minimum=0.5, maximum=3_600)

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
OPENSEARCH_TIMEOUT = env_float("OPENSEARCH_TIMEOUT", 10.0, minimum=0.1, maximum=3600)
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
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 30.0, minimum=1, maximum=3600)
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
# plotly.js for the charts: its "basic" bundle (scatter, bar, pie: what the charts use; 1.2 MB
# instead of the full 4.7 MB, so a page runs it four times faster), plotly.js 4.1.1 as in the plotly
# package, from npm's plotly.js-basic-dist-min, in static/plotly/ (MIT, LICENSE.txt there); served
# locally by whitenoise, never a CDN.
STATICFILES_DIRS = [BASE_DIR / "static"]
# As a production site serves them: `collectstatic` (make run does it) writes every file under a
# name with its content's hash, plus a gzip copy; pages link the hashed names, and whitenoise
# serves those compressed with a far-future, immutable cache. WHITENOISE_MAX_AGE is for the few
# files asked for by their plain name. Without collectstatic a page fails loudly ("Missing
# staticfiles manifest entry"), never silently serving stale or uncached files. The tests swap in
# Django's plain storage and serve from the finders (tests/conftest.py).
WHITENOISE_USE_FINDERS = False
WHITENOISE_MAX_AGE = env_int("WHITENOISE_MAX_AGE", 3600, minimum=0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
    # opensearch-py logs every request, and each failure with a traceback; the store logs one
    # line per outage itself.
    "loggers": {"opensearch": {"level": "ERROR"}},
}
# A running cycle older than this (or than PollingTime, whichever is longer) is declared stuck.
FAILOVER_STUCK_SECONDS = env_int("FAILOVER_STUCK_SECONDS", 1800, minimum=10, maximum=86_400 * 365)
# A transformation whose file and job counts stayed the same over this many cycles in a row is
# flagged "no progress" (an attention item).
FAILOVER_STALL_CYCLES = env_int("FAILOVER_STALL_CYCLES", 6, minimum=2, maximum=1_000_000)
# Insight (failover/insight.py; README "Insight" explains each figure).
# Site hints: a site is named when its failure share over the latest FAILOVER_INSIGHT_WINDOW_JOBS
# finished jobs beats the other sites' by FAILOVER_SITE_HINT_MIN_EXCESS or more, it has at least
# FAILOVER_SITE_HINT_MIN_JOBS of them, and a one-sided Fisher exact test gives p below
# FAILOVER_SITE_HINT_P divided by the number of sites tested.
FAILOVER_SITE_HINT_P = env_float("FAILOVER_SITE_HINT_P", 0.001, minimum=1e-300, maximum=0.5)
FAILOVER_SITE_HINT_MIN_JOBS = env_int("FAILOVER_SITE_HINT_MIN_JOBS", 20, minimum=1, maximum=1_000_000)
FAILOVER_SITE_HINT_MIN_EXCESS = env_float("FAILOVER_SITE_HINT_MIN_EXCESS", 0.2, minimum=0.0, maximum=1.0)
FAILOVER_INSIGHT_WINDOW_JOBS = env_int("FAILOVER_INSIGHT_WINDOW_JOBS", 500, minimum=10, maximum=10_000_000)
# Forecasts: the rate is measured over the samples of the last FAILOVER_FORECAST_WINDOW_HOURS,
# and at least FAILOVER_FORECAST_MIN_CYCLES of them are needed.
FAILOVER_FORECAST_MIN_CYCLES = env_int("FAILOVER_FORECAST_MIN_CYCLES", 3, minimum=2, maximum=10_000)
FAILOVER_FORECAST_WINDOW_HOURS = env_float("FAILOVER_FORECAST_WINDOW_HOURS", 24.0, minimum=0.01, maximum=8760.0)
# Alerts: no file Processed for this long; the last N finished jobs all failed; more than P % of
# the recent finished jobs failed (with at least this many of them); tasks not submitted for this
# long; a child still Active this long after its parent became final.
FAILOVER_STALL_HOURS = env_float("FAILOVER_STALL_HOURS", 6.0, minimum=0.01, maximum=8760.0)
FAILOVER_ALL_FAILED_JOBS = env_int("FAILOVER_ALL_FAILED_JOBS", 20, minimum=2, maximum=1_000_000)
FAILOVER_FAILED_PERCENT = env_float("FAILOVER_FAILED_PERCENT", 50.0, minimum=0.0, maximum=100.0)
FAILOVER_FAILED_MIN_JOBS = env_int("FAILOVER_FAILED_MIN_JOBS", 50, minimum=1, maximum=1_000_000)
FAILOVER_UNSUBMITTED_HOURS = env_float("FAILOVER_UNSUBMITTED_HOURS", 6.0, minimum=0.01, maximum=8760.0)
FAILOVER_CHILD_LATE_HOURS = env_float("FAILOVER_CHILD_LATE_HOURS", 24.0, minimum=0.01, maximum=8760.0)
# The lease of a cycle item and of the transformation lock a cycle or an action holds: renewed
# every third of it while its worker works, so a worker that is gone loses both after this long,
# and beat's next tick puts the item back on the queue.
FAILOVER_LEASE_SECONDS = env_int("FAILOVER_LEASE_SECONDS", 60, minimum=3, maximum=86_400)
if FAILOVER_LEASE_SECONDS >= FAILOVER_STUCK_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"FAILOVER_LEASE_SECONDS={FAILOVER_LEASE_SECONDS} must be shorter than "
        f"FAILOVER_STUCK_SECONDS={FAILOVER_STUCK_SECONDS}: a gone worker's work is put back after the "
        "lease, and a cycle is declared stuck only as the last resort"
    )
# Cycles and stored aggregates older than this are removed daily (the action log is kept).
FAILOVER_KEEP_DAYS = env_int("FAILOVER_KEEP_DAYS", 90, minimum=1, maximum=36_500)
# Fan a cycle out as one task per transformation (a chain per production), or run it as one task.
FAILOVER_FANOUT = env_bool("FAILOVER_FANOUT", True)
# Transformations per task of a fanned-out cycle: whole productions (parents first) packed into one
# task up to this many, the transformations outside productions likewise; 1: one task per production.
FAILOVER_FANOUT_GROUP = env_int("FAILOVER_FANOUT_GROUP", 50, minimum=1, maximum=100_000)

# -- cache (dashboard/pagecache.py, README: "Settings") -------------------------------------------
# Shared by every web server process: what the pages compute from a cycle's stored data is kept
# here, keyed by the transformation's last cycle and last action, and the API's throttles count
# here. CACHE_URL: file:///path (the default, a folder under VAR_DIR), redis://host:6379/1 (or
# rediss://), locmem:// (one process only) or dummy:// (nothing kept).
def _cache(name: str, default: str) -> dict:
    from urllib.parse import urlsplit

    raw = env_str(name, default).strip() or default
    url = urlsplit(raw)
    if url.scheme == "file" and url.path.startswith("/"):
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": url.path,
                "TIMEOUT": 3600, "OPTIONS": {"MAX_ENTRIES": 2000}}
    if url.scheme in ("redis", "rediss") and url.hostname:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": raw, "TIMEOUT": 3600}
    if raw in ("locmem://", "dummy://"):
        kind = "locmem.LocMemCache" if raw == "locmem://" else "dummy.DummyCache"
        return {"BACKEND": f"django.core.cache.backends.{kind}"}
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"{name}={raw!r} is not a cache: say file:///path, redis://host:6379/1, locmem:// "
                               "or dummy://")


CACHES = {"default": _cache("CACHE_URL", f"file://{VAR_DIR / 'cache'}")}
# Whole pages (the overview, its polled table, a transformation's page, the productions list) as
# each user last got them, keyed by the data version (dashboard/pagecache.py): PAGE_CACHE_URL,
# the same kinds of URL; locmem:// (the default) keeps them in each web server process's memory,
# dummy:// turns the whole-page cache off (the pages' cached parts above stay).
CACHES["pages"] = _cache("PAGE_CACHE_URL", "locmem://")
if CACHES["pages"]["BACKEND"].endswith("LocMemCache"):
    # Bounded: at most 200 pages (about 100 KiB each: 20 MB) per process, each for 10 minutes.
    CACHES["pages"].update(LOCATION="pages", TIMEOUT=600, OPTIONS={"MAX_ENTRIES": 200})

# -- the JSON API (dashboard/api.py, README: "The JSON API") ---------------------------------
# Django REST framework. Scripts authenticate with a token (`manage.py users token NAME`), the
# browser with its session; HTTP Basic with an account's password stays on unless API_BASIC_AUTH
# is false. Throttling: requests per account (API_THROTTLE_USER) and per client address before
# sign-in (API_THROTTLE_ANON), "N/s", "N/min", "N/hour" or "N/day", or "off"; counted in the
# default cache (CACHE_URL), shared by the web server's processes.
API_BASIC_AUTH = env_bool("API_BASIC_AUTH", True)


def _rate(name: str, default: str) -> str | None:
    import re

    value = env_str(name, default).strip().lower()
    if value == "off":
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{name}={value!r} is not a rate: say e.g. 600/min, 10/s, 5000/hour, or off")
    return value


API_THROTTLE_USER = _rate("API_THROTTLE_USER", "600/min")
API_THROTTLE_ANON = _rate("API_THROTTLE_ANON", "60/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        *(["dashboard.api_access.BasicAuthentication"] if API_BASIC_AUTH else []),
        "dashboard.api_access.TokenAuthentication",
        "dashboard.api_access.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.api_access.IsViewer"],
    "DEFAULT_THROTTLE_CLASSES": ["dashboard.api_access.AccountThrottle", "dashboard.api_access.AddressThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],  # read-only
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "dashboard.api_access.AlwaysJson",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "dashboard.api_access.exception_handler",
    "URL_FORMAT_OVERRIDE": None,  # ?format= is not ours to take
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Failover Dashboard API",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "DESCRIPTION": (
        "Read-only JSON for what the dashboard pages show: transformations, reports, attention items, the "
        "action log and proposals. Same roles as the pages: any viewer, operator or administrator. "
        "Authenticate with a token (`Authorization: Token KEY`, from `manage.py users token NAME`), the "
        "browser session, or HTTP Basic with an account's password (`curl -u name:password`) unless "
        "API_BASIC_AUTH is false. Invalid parameters are 400 with the field names; unknown ids 404; too many "
        "requests 429 with Retry-After."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": False,
    "PREPROCESSING_HOOKS": ["dashboard.api.expand_report_downloads"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI would send the document to validator.swagger.io for its badge: never.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": False},
    "ENUM_NAME_OVERRIDES": {},
}

# == security: HTTPS, proxy, login throttling (README: "Running behind a proxy") ===============
# One switch, FAILOVER_HTTPS, turns on the production defaults below. DEBUG cannot be that switch:
# it is false in `make run` and in the tests too, which serve plain http://127.0.0.1, where a
# redirect to https or a secure-only cookie would make the demo unusable. Each setting can also be
# given on its own.
FAILOVER_HTTPS = env_bool("FAILOVER_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", FAILOVER_HTTPS)
# Monitors may ask the health page over plain http from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", FAILOVER_HTTPS)
# Sessions are read from the shared cache (CACHE_URL) and written through to the database, so a
# signed-in page costs no session query; a session the cache lost is read from the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", FAILOVER_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if FAILOVER_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", FAILOVER_HTTPS)
# Preloading is a promise to browsers' vendors that is slow to undo: never on by default.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# "X-Forwarded-Proto: https": the header (and value) by which the proxy says the client used https.
# Only set it behind a proxy that always sets (or strips) that header itself.
_proxy_ssl = env_str("SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl:
    _header, _, _value = _proxy_ssl.partition(":")
    _header, _value = _header.strip(), (_value.strip() or "https")
    if not _header or not all(c.isascii() and (c.isalnum() or c == "-") for c in _header):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={_proxy_ssl!r} is not a header name, e.g. 'X-Forwarded-Proto: https'"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.upper().replace("-", "_"), _value)
# How many proxies stand in front of the web server: the client's address is then read from
# X-Forwarded-For, that many entries from the right (0: the connection's own address; a client
# cannot choose its address by sending the header itself).
FAILOVER_PROXY_COUNT = env_int("FAILOVER_PROXY_COUNT", 0, minimum=0)

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one account, or
# from one client address, further logins of that account or address are refused (429) for
# LOGIN_COOLOFF_MINUTES, counted from the last failure before the lock, and then accepted again;
# each lock-out is logged by the "axes" logger. The login page and the API's HTTP Basic both count.
import datetime as _dt  # noqa: E402

INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_COOLOFF_MINUTES = env_float("LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = _dt.timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own: per account, and per address
AXES_RESET_ON_SUCCESS = True
# A wrong password during the lock does not extend it, so an attacker cannot keep a user out for good.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_IPWARE_PROXY_COUNT = FAILOVER_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if FAILOVER_PROXY_COUNT else ("REMOTE_ADDR",)
)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The log names the account and the address of a lock-out (never the password).
AXES_SENSITIVE_PARAMETERS = []
# Lock-outs are warnings; axes' start-up banner and per-attempt lines (INFO) would reach every
# command's stderr.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
# == end of security ==========================================================================

"""Oversight settings, read from the environment.

Zero-install default: SQLite, the in-memory channel layer and eager Celery
tasks. Set DATABASE_URL and REDIS_URL for PostgreSQL, Redis, real Celery
workers and a shared channel layer (see docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from oversight.lib.env import envbool, envfloat, envint, envlist, envnetworks, envstr

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", False)

_DEV_SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105
SECRET_KEY = envstr("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Project apps first: audit's `flush` command must win over Django's.
    "oversight.core",
    "oversight.accounts",
    "oversight.agents",
    "oversight.audit",
    "oversight.policy",
    "oversight.releases",
    "oversight.rewind",
    "oversight.incidents",
    "oversight.killswitch",
    "oversight.gateway",
    "oversight.approvals",
    "oversight.live",
    "oversight.notifications",
    "oversight.reviews",
    "oversight.monitoring",
    "servestatic.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "guardian",
    "channels",
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "oversight.lib.request_id.RequestIdMiddleware",
    "oversight.gateway.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Above the agent API's own 256 KiB limit, so that limit answers 413 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = 512 * 1024
ROOT_URLCONF = "oversight.urls"
ASGI_APPLICATION = "oversight.asgi.application"

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
                "oversight.accounts.context_processors.roles",
                "oversight.killswitch.context_processors.killswitches",
                "oversight.notifications.context_processors.inbox",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'oversight.sqlite3'}",
        conn_health_checks=True,
    )
}


def _postgresql(database: dict, *, pool: bool) -> None:
    """Connection settings every PostgreSQL connection of ours shares."""
    # Under ASGI every request's sync code runs in a thread of its own, so persistent
    # per-thread connections would pile up; psycopg's pool shares a bounded set instead.
    database["CONN_MAX_AGE"] = 0
    # No "SELECT 1" on every checkout (a round trip per request): a connection broken by a
    # database restart fails its one request (an error, never an allow) and the pool
    # drops it when it comes back.
    database["CONN_HEALTH_CHECKS"] = False
    # Every wait for the database is bounded, so that a locked table or a server that is
    # down gives an error in about a second instead of a hang (an error, never an allow, on
    # the decision path); docs/decisions/0010-bounded-waits.md says why these values.
    # Waiting for a lock (a row, the audit chain's append lock, a table a migration holds):
    # the database itself gives up, whoever waits.
    lock_ms = round(1000 * envfloat("DB_LOCK_TIMEOUT", 1, minimum=0))
    # A backstop against runaway statements, generous for pages, jobs and exports (which
    # read in batches); a decision's own deadline is DECISION_TIMEOUT.
    statement_ms = round(1000 * envfloat("DB_STATEMENT_TIMEOUT", 30, minimum=0))
    url_options = database.get("OPTIONS", {})
    database["OPTIONS"] = {
        # Django's cursors bind on the client and are never prepared; this only lets the
        # decision path's few queries be prepared (oversight/lib/prepared.py). Behind a
        # pooler in transaction mode, set DB_PREPARED=0.
        "prepare_threshold": 5 if envbool("DB_PREPARED", True) else None,
        # One attempt to connect (libpq's minimum is 2 s). No request waits for it: the
        # pool connects in the background, and a request waits at most the pool's timeout.
        "connect_timeout": envint("DB_CONNECT_TIMEOUT", 2, minimum=2),
        **url_options,  # what the URL's query string says (sslmode...) wins
        # Sent when connecting, so they cost no round trip; 0 turns one off.
        "options": f"-c lock_timeout={lock_ms} -c statement_timeout={statement_ms} "
        f"{url_options.get('options', '')}".strip(),
    }
    if pool:
        database["OPTIONS"]["pool"] = {
            "min_size": envint("DB_POOL_MIN", 2, minimum=0),
            "max_size": envint("DB_POOL_MAX", 20, minimum=1),
            # How long a request waits for a connection when all are in use or the
            # database cannot be reached: then it fails (503 for a decision).
            "timeout": envfloat("DB_POOL_TIMEOUT", 1, minimum=0.1),
        }


# The zero-install default's SQLite file (docs/decisions/0010-bounded-waits.md):
# - IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of
#   failing half-way through a transaction;
# - write-ahead logging, so a page or a job reading does not hold up a decision's commit
#   (and a commit does not hold up readers). With SQLite's default rollback journal a
#   commit waits for every reader to finish, and a decision (DECISION_TIMEOUT, 1 s) ran
#   out of time behind the policy page's reads while policy was being edited: 503s for
#   agents. The mode is kept in the file; its -wal and -shm files belong with it.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL;",
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _postgresql(DATABASES["default"], pool=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# The role that owns the schema: migrations (`migrate --database owner`) and the grants
# that follow them. Only the release step is given it; the web, worker and beat processes
# connect with DATABASE_URL, a role that may only read and append the audit history
# (docs/decisions/0013-runtime-database-role.md).
_owner_url = envstr("DATABASE_OWNER_URL")
if _owner_url:
    DATABASES["owner"] = dj_database_url.parse(_owner_url)
    if {DATABASES["owner"]["ENGINE"], DATABASES["default"]["ENGINE"]} != {
        "django.db.backends.postgresql"
    }:
        raise ImproperlyConfigured("DATABASE_OWNER_URL needs DATABASE_URL on PostgreSQL too.")
    if DATABASES["owner"]["USER"] == DATABASES["default"]["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL and DATABASE_URL name the same role; the processes' role "
            "must not be the owner."
        )
    _postgresql(DATABASES["owner"], pool=False)  # short-lived commands: no pool
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads per web process that run agents' decisions (oversight/gateway/fastlane.py).
DECISION_THREADS = envint("DECISION_THREADS", 3, minimum=1)
# Seconds a decision may take in the fast lane, from its arrival: one still queued for a
# thread then is answered 503 without touching the database, and the statement of one
# still running is cancelled (the answer says what happened).
DECISION_TIMEOUT = envfloat("DECISION_TIMEOUT", 1, minimum=0.1)

# Live fragments published by a web process within this many milliseconds leave as one
# message per channel-layer group: a socket's cost is per message, not per fragment. Each
# fragment waits at most this long; 25 ms gave 100 sockets over 50 messages a second
# each at 200 actions/s (docs/decisions/0009-live-coalescing.md, docs/performance.md).
LIVE_BATCH_WINDOW_MS = envint("LIVE_BATCH_WINDOW_MS", 50, minimum=0)

# --- Redis: channel layer, Celery, cache --------------------------------------
REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    # Redis pub/sub ignores database numbers, so the prefix carries it: deployments on one
    # Redis server (say staging on /1, production on /0) never hear each other's events.
    _redis_db = urlsplit(REDIS_URL).path.strip("/") or "0"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": envstr("CHANNELS_PREFIX", f"oversight-db{_redis_db}"),
            },
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Tasks run at once (eager); the in-memory transport still wants a host name, and
    # warns "No hostname was supplied" on every task without one.
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# The longest a long-poll (GET /api/v1/actions/{id}?wait=N, /compensations?wait=N) holds: a
# test server that a fuzzer drives sets it low; the API's limit stays what it documents.
LONG_POLL_CAP_SECONDS = envint("LONG_POLL_CAP_SECONDS", 60, minimum=0)
# A rewind that would undo this many actions or more waits for a second person's approval.
REWIND_APPROVAL_THRESHOLD = envint("REWIND_APPROVAL_THRESHOLD", 50, minimum=1)
# How long a rewind's job stays with it while its undos are on their way, recording each
# as it is reported (oversight/rewind/tasks.py); 0 where jobs run inline (no broker).
REWIND_FOLLOW_SECONDS = envfloat("REWIND_FOLLOW_SECONDS", 20 if REDIS_URL else 0, minimum=0)
# Incident analysis (oversight/incidents/analysis): the width of a bucket of the behaviour
# series (a minute; the accuracy benchmark runs scenarios faster with smaller ones), and
# how many buckets before an incident opened it looks at.
INCIDENT_BUCKET_SECONDS = envint("INCIDENT_BUCKET_SECONDS", 60, minimum=1)
INCIDENT_LOOKBACK_BUCKETS = envint("INCIDENT_LOOKBACK_BUCKETS", 180, minimum=10)
# Without a broker there is no Celery beat: the web server runs the beat schedule itself,
# so that what the jobs change reaches its in-memory channel layer and open pages
# (docs/decisions/0018-periodic-jobs-in-the-server.md). One server process only.
PERIODIC_IN_SERVER = envbool("PERIODIC_IN_SERVER", not REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 3600

# --- Auth and permissions -----------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user; every page needs a login
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Internationalisation -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (served by the ASGI app itself through ServeStatic) ---------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "servestatic.storage.CompressedManifestStaticFilesStorage"
    },
}
SERVESTATIC_USE_FINDERS = DEBUG

# --- Email ----------------------------------------------------------------------
EMAIL_HOST = envstr("EMAIL_HOST", "")
EMAIL_PORT = envint("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "oversight@localhost")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")  # absolute links in notifications
# /dev/outbox/: the emails Oversight sent, readable in the browser with their links, so
# the zero-install demo shows email without a mail server. On by default only when
# DEBUG is on and no mail server is set; everywhere else the page is a 404.
DEV_OUTBOX = envbool("DEV_OUTBOX", DEBUG and not EMAIL_HOST)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Webhooks (team notifications, compensations, checkpoint sinks) go only to public
# addresses, and to addresses in these networks: e.g. "10.20.0.0/16" for a receiver inside
# the deployment's network, "127.0.0.1" for one on this machine. DEBUG allows any.
WEBHOOK_ALLOWED_NETWORKS = envnetworks("WEBHOOK_ALLOWED_NETWORKS", [])

# --- Security ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^ping$"]  # load balancers probe over plain HTTP
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    if envbool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Audit --------------------------------------------------------------------
# `manage.py flush` may empty the append-only audit table only where this is on
# (the test suite); everywhere else the database trigger refuses it.
AUDIT_FLUSH_ALLOWED = envbool("AUDIT_FLUSH_ALLOWED", False)
# Checkpoints (docs/audit-trust.md): the Ed25519 key that signs them, as PEM text in
# AUDIT_SIGNING_KEY or a PEM file. Only where AUDIT_SIGNING_KEY_CREATE is on (DEBUG, the
# zero-install run) is a missing key file created.
AUDIT_SIGNING_KEY = envstr("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = envstr("AUDIT_SIGNING_KEY_FILE", str(BASE_DIR / "var" / "audit-key.pem"))
AUDIT_SIGNING_KEY_CREATE = envbool("AUDIT_SIGNING_KEY_CREATE", DEBUG)
# The log's name in every checkpoint, so that two deployments' checkpoints never mix.
AUDIT_LOG_NAME = envstr("AUDIT_LOG_NAME", urlsplit(SITE_URL).netloc or "oversight")
# Where checkpoints go: "dir:PATH", "webhook:URL" (HMAC-signed with
# AUDIT_CHECKPOINT_WEBHOOK_SECRET) and "email:ADDRESS", comma-separated.
AUDIT_CHECKPOINT_SINKS = envlist(
    "AUDIT_CHECKPOINT_SINKS", [f"dir:{BASE_DIR / 'var' / 'checkpoints'}"]
)
AUDIT_CHECKPOINT_WEBHOOK_SECRET = envstr("AUDIT_CHECKPOINT_WEBHOOK_SECRET", "")
# A checkpoint is written when this many events are new, or when any are and the last
# checkpoint is this old (the beat job looks every AUDIT_CHECKPOINT_POLL_SECONDS).
AUDIT_CHECKPOINT_EVERY_EVENTS = envint("AUDIT_CHECKPOINT_EVERY_EVENTS", 10_000, minimum=1)
AUDIT_CHECKPOINT_MAX_AGE_SECONDS = envint("AUDIT_CHECKPOINT_MAX_AGE_SECONDS", 300, minimum=1)
AUDIT_CHECKPOINT_POLL_SECONDS = envint("AUDIT_CHECKPOINT_POLL_SECONDS", 30, minimum=1)
# At most this many new events per checkpoint (its file lists their hashes); a backlog
# is covered by several.
AUDIT_CHECKPOINT_MAX_EVENTS = envint("AUDIT_CHECKPOINT_MAX_EVENTS", 100_000, minimum=1)

# --- Metrics ------------------------------------------------------------------
# /metrics answers scrapers sending "Authorization: Bearer <token>" (and logged-in admins).
# Only the token's SHA-256 is kept: give METRICS_TOKEN_SHA256 (hex), or METRICS_TOKEN.
_metrics_token = (envstr("METRICS_TOKEN") or "").strip()
METRICS_TOKEN_SHA256 = (envstr("METRICS_TOKEN_SHA256") or "").strip().lower() or (
    hashlib.sha256(_metrics_token.encode()).hexdigest() if _metrics_token else ""
)
del _metrics_token  # the plain token is not kept in settings
if METRICS_TOKEN_SHA256 and not re.fullmatch(r"[0-9a-f]{64}", METRICS_TOKEN_SHA256):
    raise ImproperlyConfigured("METRICS_TOKEN_SHA256 must be 64 hex digits.")
# Several processes (uvicorn workers, Celery) count into this directory; see docs/deploy.md.
_multiproc_dir = envstr("PROMETHEUS_MULTIPROC_DIR")
if _multiproc_dir and not Path(_multiproc_dir).is_dir():
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={_multiproc_dir!r} is not a directory.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusals_in_one_line": {"()": "oversight.lib.logs.RefusalsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"django.request": {"filters": ["refusals_in_one_line"]}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

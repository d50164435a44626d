"""Settings for Polaris Workflow: one module, every knob read from the environment.

Each variable is documented in docs/configuration.md. ``scripts/devstack.py`` fills in
``DATABASE_URL``/``REDIS_URL`` with embedded servers when they are not given.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from polaris.environment import env_bool, env_float, env_int, env_list, env_str
from polaris.logging import logging_config
from polaris.sql.prepared import PREPARE_ONLY_WHEN_ASKED, HotStatementCursor

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105
# Keys published in this repository (.env.example, the docs) are no secret: production refuses them.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "change-me-to-a-long-random-string",
        "change-me",
        "changeme",
        "secret",
        "django-insecure-development-only-key-do-not-use-in-production",
    }
)
if not DEBUG and (SECRET_KEY in PLACEHOLDER_SECRET_KEYS or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published placeholder; generate one, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )

# JWTs have a key of their own: a leaked SECRET_KEY mints no token, rotating one key leaves the other alone.
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY") or ("development-only-jwt-" + SECRET_KEY if DEBUG else "")
if not DEBUG and JWT_SIGNING_KEY in {"", SECRET_KEY, *PLACEHOLDER_SECRET_KEYS}:
    raise ImproperlyConfigured(
        "JWT_SIGNING_KEY must be set when DEBUG is off, to a key of its own (not the SECRET_KEY, not a "
        "placeholder), e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # The admin site closes to anyone whose role is not admin (polaris/accounts/admin_site.py).
    "polaris.accounts.admin_site.PolarisAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "polaris.accounts",
    "polaris.idempotency",
    "polaris.audit",
    "outbox",
    "workflow",
    "sla",
    "routing",
    "automation",
    "careplans",
    "reports",
    "ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before anything reads the scheme or the client's address: forwarded headers from untrusted peers go.
    "polaris.proxies.TrustedProxyMiddleware",
    # Every /api/ error answer (DEBUG pages, CSRF, unrouted paths) becomes the JSON envelope.
    "polaris.api.handlers.ApiEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "polaris.api.middleware.CorrelationIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "polaris.api.handlers.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ops.middleware.RequestLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: turns a locked-out admin login into its 429 (polaris/accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "polaris.urls"
WSGI_APPLICATION = "polaris.wsgi.application"

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

# PostgreSQL is the only supported database: the outbox claims rely on SKIP LOCKED and partial indexes.
DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make run` / `make test`, which start an embedded PostgreSQL."
    )
# Persistent connections (DB_CONN_MAX_AGE) without a health check (a `SELECT 1` round trip per request): a
# connection that died while idle fails its request's first statement instead (503 with Retry-After,
# polaris.api.outages) and is closed, so the next request reconnects. DB_CONN_HEALTH_CHECKS=true: checked.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
}
# The password on its own (or DATABASE_PASSWORD_FILE), replacing the URL's: compose feeds the one secret
# file to both the postgres service (POSTGRES_PASSWORD_FILE) and the apps, so no URL holds it.
if DATABASE_PASSWORD := env_str("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = DATABASE_PASSWORD
# Server-side parameter binding, and the hot statements (polaris/sql/precompiled.py) prepared on the
# server once per connection: a transition's statements are then not parsed and planned on every call
# (1,158 -> 1,718 transitions/s in bench/peers_bench.py, same machine). Nothing else is prepared
# (polaris/sql/prepared.py says why). Turn binding off behind a transaction-pooling pgbouncer older than
# 1.21, which cannot keep prepared statements.
if env_bool("DB_SERVER_SIDE_BINDING", True):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        cursor_factory=HotStatementCursor,
        prepare_threshold=PREPARE_ONLY_WHEN_ASKED,
    )
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Polaris Workflow supports PostgreSQL only.")
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out admin login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production defaults; relaxed only by DEBUG or explicit variables) ---
# X-Forwarded-Proto/-For/-Host are believed only from these peers (IPs or CIDRs; polaris.proxies drops
# them from anyone else, and gunicorn's forwarded_allow_ips follows the same list).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "127.0.0.1,::1")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Health and metrics probes come over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "polaris.api.handlers.csrf_failure"

# --- REST framework ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "polaris.api.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "polaris.api.schema.EnvelopeAutoSchema",
    # JSON only: the browsable API is off (its forms need a queryset many views do not have, and every
    # answer must be the documented JSON). Interactive docs live at /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "polaris.api.exceptions.exception_handler",
    # JSON only, as the schema says (anything else is 415 UNSUPPORTED_MEDIA_TYPE).
    "DEFAULT_PARSER_CLASSES": ["polaris.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_PAGINATION_CLASS": "polaris.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "polaris.api.throttling.AnonRateThrottle",
        "polaris.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "6000/minute"),
        # /api/auth/token/: every attempt counts, per client address and per username (known or not).
        "login_address": env_str("LOGIN_THROTTLE_ADDRESS", "20/minute"),
        "login_username": env_str("LOGIN_THROTTLE_USERNAME", "10/minute"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "UPDATE_LAST_LOGIN": False,
    # A refresh token is good once (rotated and blacklisted); tokens carry "ver" (polaris/api/auth_tokens.py).
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "TOKEN_OBTAIN_SERIALIZER": "polaris.api.auth_tokens.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "polaris.api.auth_tokens.TokenRefreshSerializer",
}
# An access token whose "ver" is behind its user's token_version is refused. Off only for bench/api_bench.py.
JWT_TOKEN_VERSION_CHECK = env_bool("JWT_TOKEN_VERSION_CHECK", True)
# Admin login lockout (django-axes, admin site only), by username and by client address separately; each
# attempt during a lockout restarts the cool-off (the back-off: who keeps trying stays locked out).
AXES_ONLY_ADMIN_SITE, AXES_RESET_ON_SUCCESS, AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True, True, True
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("AXES_COOLOFF_MINUTES", 15.0))
AXES_CLIENT_IP_CALLABLE = "polaris.proxies.client_ip"
AXES_HANDLER, AXES_LOCKOUT_CALLABLE = (
    "polaris.accounts.lockout.AdminLockoutHandler",
    "polaris.accounts.lockout.lockout_response",
)
SPECTACULAR_SETTINGS = {
    "TITLE": "Polaris Workflow API",
    "DESCRIPTION": "Tasks, action plans, transitions, domain events, SLAs and automation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: the docs work with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Named enums for the state machines (several serializers share them).
    "ENUM_NAME_OVERRIDES": {
        "TaskStateEnum": "workflow.models.TaskState",
        "ActionPlanStateEnum": "workflow.models.ActionPlanState",
        "PriorityEnum": "workflow.models.TaskPriority",  # a task's priority, a routing rule's priorities
        "TriggerEventTypeEnum": "automation.api.serializers.trigger_event_types",  # registered at start-up
        "ApproverRoleEnum": "workflow.services.approvals.APPROVER_ROLES",  # a subset of the users' roles
    },
}

# Throttling and idempotency share a cache; Redis keeps them consistent across web processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "polaris",
    }
}

# --- Celery ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Workflow: outbox and dispatch ---
OUTBOX_DISPATCH_BATCH_SIZE = env_int("OUTBOX_DISPATCH_BATCH_SIZE", 500)
OUTBOX_DISPATCH_INTERVAL_SECONDS = env_float("OUTBOX_DISPATCH_INTERVAL_SECONDS", 5.0)
OUTBOX_KICK_ON_COMMIT = env_bool("OUTBOX_KICK_ON_COMMIT", True)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 10)
# A claim's lease: how soon a killed worker's events are due again. A live dispatcher renews it every
# OUTBOX_HEARTBEAT_SECONDS (default a third of the lease; 0 turns the heartbeat off) while its batch runs.
OUTBOX_LEASE_SECONDS = env_float("OUTBOX_LEASE_SECONDS", 3.0)
OUTBOX_HEARTBEAT_SECONDS = env_float("OUTBOX_HEARTBEAT_SECONDS", OUTBOX_LEASE_SECONDS / 3)
OUTBOX_RETRY_BASE_SECONDS = env_float("OUTBOX_RETRY_BASE_SECONDS", 2.0)
OUTBOX_RETRY_MAX_SECONDS = env_float("OUTBOX_RETRY_MAX_SECONDS", 3600.0)
# One dispatch task stops starting new batches after this long (its soft limit adds the lease on top).
OUTBOX_DISPATCH_TIME_BUDGET_SECONDS = env_float("OUTBOX_DISPATCH_TIME_BUDGET_SECONDS", 20.0)
# Extra modules imported by OutboxConfig.ready() that register dispatch handlers (tests, plug-ins).
OUTBOX_EXTRA_HANDLER_MODULES = env_list("OUTBOX_EXTRA_HANDLER_MODULES")
# Retention (beat, hourly): ledger rows of events dispatched more than this long ago (0: kept forever),
# and the event history itself (0, the default: kept forever; only dispatched events are ever dropped).
OUTBOX_LEDGER_RETENTION_DAYS = env_int("OUTBOX_LEDGER_RETENTION_DAYS", 30)
OUTBOX_EVENT_RETENTION_DAYS = env_int("OUTBOX_EVENT_RETENTION_DAYS", 0)
# The event feed: the most a long-poll (?wait=) may wait, and the page size bounds. Long-polls wait on the
# async tier (polaris.asgi); the sync tier answers at once unless EVENT_FEED_SYNC_MAX_WAIT_SECONDS allows
# it a short wait. Concurrent waits are capped per user (counted in Redis, shared by every process) and
# per async process.
EVENT_FEED_MAX_WAIT_SECONDS = env_float("EVENT_FEED_MAX_WAIT_SECONDS", 25.0)
EVENT_FEED_MAX_LIMIT = env_int("EVENT_FEED_MAX_LIMIT", 1000)
EVENT_FEED_SYNC_MAX_WAIT_SECONDS = env_float("EVENT_FEED_SYNC_MAX_WAIT_SECONDS", 0.0)
EVENT_FEED_MAX_WAITS_PER_USER = env_int("EVENT_FEED_MAX_WAITS_PER_USER", 4)
EVENT_FEED_MAX_WAITS_PER_PROCESS = env_int("EVENT_FEED_MAX_WAITS_PER_PROCESS", 2000)
# Threads per async process for the feed's database work (auth, reads): its most database connections.
EVENT_FEED_ASYNC_THREADS = env_int("EVENT_FEED_ASYNC_THREADS", 8)
# The longest wait must end well before any worker or proxy gives up on the request (gunicorn's timeout
# kills a sync worker; a proxy's read timeout cuts the connection): refuse to start otherwise.
WORKER_TIMEOUT_SECONDS = env_float("GUNICORN_TIMEOUT", 30.0)
EVENT_FEED_WAIT_MARGIN_SECONDS = 5.0
for _name in ("EVENT_FEED_MAX_WAIT_SECONDS", "EVENT_FEED_SYNC_MAX_WAIT_SECONDS"):
    if globals()[_name] + EVENT_FEED_WAIT_MARGIN_SECONDS > WORKER_TIMEOUT_SECONDS:
        raise ImproperlyConfigured(
            f"{_name}={globals()[_name]:g} must be at least {EVENT_FEED_WAIT_MARGIN_SECONDS:g} s under the "
            f"worker timeout (GUNICORN_TIMEOUT={WORKER_TIMEOUT_SECONDS:g}); lower it or raise the timeout."
        )

# --- SLA ---
SLA_SCAN_INTERVAL_SECONDS = env_int("SLA_SCAN_INTERVAL_SECONDS", 300)
SLA_SCAN_BATCH_SIZE = env_int("SLA_SCAN_BATCH_SIZE", 5000)

# --- Automation ---
AUTOMATION_MAX_DEPTH = env_int("AUTOMATION_MAX_DEPTH", 5)
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS")
# One deadline for a whole attempt (connect, TLS, send, read); the test ping too.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
# Ports a webhook URL may use (hosts in WEBHOOK_ALLOWED_HOSTS are exempt); "*": any port.
WEBHOOK_ALLOWED_PORTS = env_list("WEBHOOK_ALLOWED_PORTS", "80,443")
# An attempt's claim lasts WEBHOOK_LEASE_SECONDS unless its sender renews it (every WEBHOOK_HEARTBEAT_SECONDS,
# a third of the lease by default): a killed sender's delivery is due again within seconds.
WEBHOOK_LEASE_SECONDS = env_float("WEBHOOK_LEASE_SECONDS", 5.0)
WEBHOOK_HEARTBEAT_SECONDS = env_float("WEBHOOK_HEARTBEAT_SECONDS", WEBHOOK_LEASE_SECONDS / 3)
# How often beat sweeps for deliveries to re-enqueue: lapsed claims (at once) and lost messages (after 60 s).
WEBHOOK_SWEEP_INTERVAL_SECONDS = env_float("WEBHOOK_SWEEP_INTERVAL_SECONDS", 5.0)
# Seconds before each retry (7 retries spanning about a day); attempts = 1 + len(schedule) per round.
WEBHOOK_RETRY_SCHEDULE_SECONDS = [
    float(value) for value in env_list("WEBHOOK_RETRY_SCHEDULE_SECONDS", "5,300,1800,7200,18000,36000,36000")
]
# Consecutive failed attempts after which an endpoint is disabled (0: never).
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 20)
WEBHOOK_SECRET_ROTATION_GRACE_SECONDS = env_float("WEBHOOK_SECRET_ROTATION_GRACE_SECONDS", 86400.0)
# Attempts of finished deliveries older than this are trimmed by beat (0: kept forever).
WEBHOOK_ATTEMPT_RETENTION_DAYS = env_int("WEBHOOK_ATTEMPT_RETENTION_DAYS", 30)
# Retention of automation's logs (0: forever); only finished deliveries, timers and acknowledged alerts go.
WEBHOOK_DELIVERY_RETENTION_DAYS = env_int("WEBHOOK_DELIVERY_RETENTION_DAYS", 30)
TRIGGER_EXECUTION_RETENTION_DAYS = env_int("TRIGGER_EXECUTION_RETENTION_DAYS", 30)
TRIGGER_TIMER_RETENTION_DAYS = env_int("TRIGGER_TIMER_RETENTION_DAYS", 30)
ALERT_RETENTION_DAYS = env_int("ALERT_RETENTION_DAYS", 90)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 730)  # the audit log: two years
# Retention trims: rows per batch (each its own transaction), the share of wall time batches may take
# (the rest is rest), and how long one hourly run goes on (polaris/retention.py).
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 1000)
RETENTION_DUTY_CYCLE = env_float("RETENTION_DUTY_CYCLE", 0.25)
RETENTION_RUN_SECONDS = env_float("RETENTION_RUN_SECONDS", 480.0)
AUTOMATION_RECORD_NOT_MATCHED = env_bool("AUTOMATION_RECORD_NOT_MATCHED", False)
AUTOMATION_TRIGGER_CACHE_SECONDS = env_float("AUTOMATION_TRIGGER_CACHE_SECONDS", 1.0)
# Exactly one beat (ops/beat_guard.py): a beat holds a Redis lock with this TTL, renewed every third of it;
# a beat that died without releasing is replaced within it.
BEAT_LOCK_TTL_SECONDS = env_float("BEAT_LOCK_TTL_SECONDS", 30.0)

# Timed triggers (automation/timers.py): beat's sweep is the safety net; workers arm the next due timer.
TIMER_SWEEP_INTERVAL_SECONDS = env_float("TIMER_SWEEP_INTERVAL_SECONDS", 5.0)
TIMER_ARM_ENABLED = env_bool("TIMER_ARM_ENABLED", True)
TIMER_ARM_HORIZON_SECONDS = env_float("TIMER_ARM_HORIZON_SECONDS", 60.0)
TIMER_FIRE_BATCH_SIZE = env_int("TIMER_FIRE_BATCH_SIZE", 500)
TIMER_FIRE_TIME_BUDGET_SECONDS = env_float("TIMER_FIRE_TIME_BUDGET_SECONDS", 10.0)
# Server-side bound on one claim transaction (its row locks): the timer lease, in effect.
TIMER_CLAIM_TIMEOUT_SECONDS = env_float("TIMER_CLAIM_TIMEOUT_SECONDS", 10.0)
# Backtests read at most this many events and stop after this long, or once the process has grown by
# this much memory (the answer says it was cut short, and why). Keep the seconds below GUNICORN_TIMEOUT.
BACKTEST_MAX_EVENTS = env_int("BACKTEST_MAX_EVENTS", 2_000_000)
BACKTEST_MAX_SECONDS = env_float("BACKTEST_MAX_SECONDS", 20.0)
BACKTEST_MAX_MEMORY_MB = env_int("BACKTEST_MAX_MEMORY_MB", 256)
BACKTEST_MAX_DAYS = env_int("BACKTEST_MAX_DAYS", 366)

# --- Idempotency ---
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
# Lists count matching rows exactly up to this many (a task search: workflow.search.NARROW_MATCHES), and
# take PostgreSQL's estimate beyond (a page then costs the same at any size: polaris.api.pagination).
API_EXACT_COUNT_LIMIT = env_int("API_EXACT_COUNT_LIMIT", 10_000)

# --- Outages ---
# The Retry-After (seconds) of a 503 SERVICE_UNAVAILABLE: the database or the broker is unreachable.
API_RETRY_AFTER_SECONDS = env_int("API_RETRY_AFTER_SECONDS", 5)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "console" if DEBUG else "json")
# structlog: JSON lines (or readable console lines) with correlation id, actor and task/event ids.
LOGGING = logging_config(level=LOG_LEVEL or "INFO", fmt=LOG_FORMAT or "json")

# --- Operations ---
# When set, /metrics answers only requests carrying ``Authorization: Bearer <token>`` (docs/operations.md).
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN")
# Without a token /metrics answers only when this is on (else 403); on by default with DEBUG only.
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", DEBUG)
# The Celery worker's main process serves its metrics on this port when set (0: off); see docs/operations.md.
WORKER_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)
WORKER_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "0.0.0.0")  # noqa: S104 — a scrape target

"""Shop settings: everything comes from the environment (12-factor).

With no environment at all the project runs in its *embedded default*: one SQLite
file per bounded context under ``var/``, an in-process cache and Celery tasks run
eagerly in the web process. Setting the ``*_DATABASE_URL``, ``REDIS_URL`` and
``CELERY_BROKER_URL`` variables switches to the production shape (PostgreSQL per
context, Redis cache/rate limits, a real broker and workers).

One section per concern, each setting assigned exactly once (``tests/unit/test_settings_layout.py``
checks it): to change a behaviour, there is one line to find.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from shop.contexts import CONTEXTS, DEFAULT_QUEUE, database_url_variable

# --- Environment and secrets ------------------------------------------------------------------
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DJANGO_ENV = env("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
IS_PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)

# Outside production an unset key falls back to a well-known development key; production
# refuses to start without real ones (see "Production refusals" below, checked before anything else).
SECRET_KEY = env("SECRET_KEY", default="") or (
    "" if IS_PRODUCTION else "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
)
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY", default="") or (
    "" if IS_PRODUCTION else "dev-insecure-jwt-key-change-me-0123456789abcdefghijklmnop"
)
if IS_PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")
    _missing = [name for name, value in (("SECRET_KEY", SECRET_KEY), ("JWT_SIGNING_KEY", JWT_SIGNING_KEY)) if not value]
    _missing += [name for name in map(database_url_variable, CONTEXTS) if not env(name, default="")]
    if _missing:
        raise ImproperlyConfigured("Refusing to start in production; missing required settings: " + ", ".join(_missing))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])

# --- Applications, middleware, templates, static files ----------------------------------------
INSTALLED_APPS = [
    # First: its createsuperuser/changepassword (accounts database by default) must shadow auth's.
    "apps.accounts",
    "shop.admin_apps.ShopAdminConfig",  # django.contrib.admin with the shop's site (operations section)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "corsheaders",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "shop",
    *(f"apps.{context}" for context in CONTEXTS if context != "accounts"),
]

MIDDLEWARE = [
    "shop.observability.middleware.CorrelationIdMiddleware",
    "shop.api.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "shop.security.csp.PathCSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shop.api.ratelimit.RateLimitMiddleware",
    "shop.observability.middleware.RequestLogMiddleware",
    # After the rate limits and the request log (they count a request once): re-runs a request
    # once when its database session died before it committed anything.
    "shop.api.middleware.DatabaseRetryMiddleware",
    # Last, as django-axes requires: turns a locked-out admin login into its 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of third-party templates (the admin's base_site: favicon).
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# The admin's CSS/JS are served by the app itself (WhiteNoise), so gunicorn alone is enough in
# production; `collectstatic` (run in the Dockerfile) lets it serve them compressed from STATIC_ROOT.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Databases: one per bounded context -------------------------------------------------------
# ``default`` is deliberately empty (Django's dummy backend): every query must be routed to
# a context's alias, so a query that forgot its context fails loudly instead of silently
# landing in some shared database.
# Per context and process: 8 keeps one worker host (concurrency 4, 24 payments threads) and two
# gunicorn workers within PostgreSQL's default 100 connections (docs/events.md, connection budget).
DB_POOL_MAX = env.int("DB_POOL_MAX_SIZE", default=8)
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=10_000)


def _database(alias: str) -> dict:
    url = env(database_url_variable(alias), default="")
    if not url:
        VAR_DIR.mkdir(exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / f"{alias}.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            "TEST": {"NAME": str(VAR_DIR / f"test_{alias}.sqlite3"), "DEPENDENCIES": []},
        }
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
        config["ENGINE"] = "shop.postgresql"  # Django's, with a cheaper pool checkout check
        config.setdefault("OPTIONS", {})
        # TimeZone=UTC at connect: the server's own zone ("Etc/UTC") is not spelled "UTC", so
        # Django would otherwise send SET TIME ZONE on every connection it hands out.
        config["OPTIONS"]["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS} -c TimeZone=UTC"
        config["OPTIONS"]["connect_timeout"] = env.int("DB_CONNECT_TIMEOUT", default=5)
        config["CONN_MAX_AGE"] = 0
        if env.bool("DB_PREPARED_STATEMENTS", default=True):
            # Parameters bound by the server, and a statement run five times on a connection is
            # prepared there: PostgreSQL then skips parsing and planning it (per checkout order,
            # its CPU went 14.3 -> 10.2 ms in make bench). Pooled connections keep their
            # prepared statements. Django turns them off by default for transaction-mode poolers
            # (PgBouncer before 1.21): set DB_PREPARED_STATEMENTS=false behind one.
            config["OPTIONS"]["server_side_binding"] = True
            config["OPTIONS"]["prepare_threshold"] = 5
        if env.bool("DB_POOL", default=True):
            # Connections outlive requests and Celery tasks (config/celery.py keeps the worker
            # fix-up from tearing the pool down per task). The pool checks a connection at
            # checkout without a round trip (shop/postgresql): one the server ended while idle
            # (pg_terminate_backend, a restart, a failover) is replaced instead of failing the
            # next request with a 500 (found by bench/chaos.py). max_idle: a connection unused
            # for a minute is closed, so the many small pools (each web and worker process holds
            # one per context it touches) give back what they do not need; see docs/events.md
            # for the connection budget. reconnect_timeout: psycopg_pool retries a failed connect
            # with a doubling pause (1, 2, 4 ... s) for five minutes by default, and no request can
            # start another attempt meanwhile, so after an outage a pool could stay empty long after
            # the database was back (make chaos: a 503 sixteen seconds after a 15 s refusal ended).
            # Given up after a few seconds, the next request that waits starts a fresh attempt.
            config["OPTIONS"]["pool"] = {
                "min_size": 0,
                "max_size": DB_POOL_MAX,
                "timeout": 10,
                "max_idle": 60,
                "reconnect_timeout": env.float("DB_POOL_RECONNECT_SECONDS", default=5.0),
            }
        config["CONN_HEALTH_CHECKS"] = True
    config["TEST"] = {"DEPENDENCIES": []}  # contexts are independent; "default" is empty
    return config


DATABASES = {"default": {}} | {alias: _database(alias) for alias in CONTEXTS}
DATABASE_ROUTERS = ["config.router.ContextRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication: users, passwords, JWT ----------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The admin's sign-in (shop/security/admin_login.py): django-axes throttles it, django-otp adds
# TOTP two-factor, required in production (ADMIN_REQUIRE_OTP).
AUTHENTICATION_BACKENDS = [
    "shop.security.admin_login.AdminLoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "shop.security.admin_login.AdminLoginHandler"
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
# Locked: one client IP, or one account from one client IP (a stranger cannot lock the owner out).
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "shop.security.admin_login.admin_username"
AXES_CLIENT_IP_CALLABLE = "shop.api.ratelimit.client_ip"
AXES_VERBOSE = False
ADMIN_REQUIRE_OTP = env.bool("ADMIN_REQUIRE_OTP", default=IS_PRODUCTION)
OTP_TOTP_ISSUER = "Shop admin"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "LEEWAY": 0,
    # Tokens carry a digest of the password hash: changing a password ends every session.
    "CHECK_REVOKE_TOKEN": True,
}
# Seconds a customer's principal stays cached (apps/accounts/authentication.py; 0: read every time).
ACCOUNTS_PRINCIPAL_CACHE_SECONDS = env.int("ACCOUNTS_PRINCIPAL_CACHE_SECONDS", default=60)

# --- Redis / cache ----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# The fake gateway's "provider side" (its charges, idempotency keys, call log, outage drill) lives
# in the default cache unless this names a Redis of its own: a fault drill that restarts our Redis
# (bench/chaos.py) must not wipe the provider's ledger, as it would not wipe a real provider's.
PAYMENT_FAKE_REDIS_URL = env("PAYMENT_FAKE_REDIS_URL", default="")


def _redis_cache(location: str) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="shop"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # JSON, never pickle: unpickling runs code, so write access to Redis would
            # become code execution in every web and worker process.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }


if REDIS_URL:
    CACHES = {"default": _redis_cache(REDIS_URL)} | (
        {"payment_provider": _redis_cache(PAYMENT_FAKE_REDIS_URL)} if PAYMENT_FAKE_REDIS_URL else {}
    )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shop"}}
CACHE_STALE_SECONDS = env.int("CACHE_STALE_SECONDS", default=60)  # grace to serve stale while one caller rebuilds
CACHE_LOCK_SECONDS = env.int("CACHE_LOCK_SECONDS", default=10)  # rebuild lock lifetime (stampede protection)
CACHE_WAIT_SECONDS = env.float("CACHE_WAIT_SECONDS", default=3.0)  # how long a cold miss waits for another's rebuild

# --- Events (outbox -> relay -> Celery -> inbox) ----------------------------------------------
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=5)
EVENTS_RETENTION_DAYS = env.int("EVENTS_RETENTION_DAYS", default=7)
EVENTS_INBOX_RETENTION_DAYS = env.int("EVENTS_INBOX_RETENTION_DAYS", default=30)
EVENTS_RETRY_BASE_SECONDS = env.float("EVENTS_RETRY_BASE_SECONDS", default=1.0)
# The on-commit fast path only speeds delivery up; off, the sweeper alone delivers.
EVENTS_FAST_PATH = env.bool("EVENTS_FAST_PATH", default=True)
# An event stays owed until every subscriber's inbox has it: this long after a send, the sweeper
# checks the inboxes and re-sends what has not arrived (lost by a broker restart, say), pausing
# twice as long after each re-send.
EVENTS_REDELIVER_AFTER_SECONDS = env.float("EVENTS_REDELIVER_AFTER_SECONDS", default=60.0)
# A delivery that finds a worker pool process free runs after the linger (ms), with what came meanwhile;
# while all are busy, deliveries gather into one task per free process, up to the maximum
# (shop/events/batches.py).
EVENTS_BATCH_MAX = env.int("EVENTS_BATCH_MAX", default=32)
EVENTS_BATCH_LINGER_MS = env.float("EVENTS_BATCH_LINGER_MS", default=5.0)
# Deliveries to these contexts wait on a remote party (the payment provider): they run in a thread
# pool of this size per worker process, so a slow provider does not hold a whole batch. 24 let 96
# provider calls wait at once on one host (two 300 ms calls per order: 160 orders/s). Threads cost
# no connections beyond the pools' size: an authorization holds none while it waits, and the rest
# take turns at the pool (docs/events.md, connection budget).
EVENTS_WAITING_CONTEXTS = env.list("EVENTS_WAITING_CONTEXTS", default=["payments"])
EVENTS_WAITING_THREADS = env.int("EVENTS_WAITING_THREADS", default=24)
# How long a batch waits, after its own deliveries, for the ones it handed to threads, so that
# their replies leave in the batch's messages (shop/events/tasks.py).
EVENTS_WAITING_JOIN_MS = env.float("EVENTS_WAITING_JOIN_MS", default=10.0)
# One sweep stops claiming new batches after this long (below the task soft time limit).
EVENTS_SWEEP_BUDGET_SECONDS = env.float("EVENTS_SWEEP_BUDGET_SECONDS", default=30.0)

# --- Catalog and inventory --------------------------------------------------------------------
CATALOG_PRODUCT_CACHE_TTL = env.int("CATALOG_PRODUCT_CACHE_TTL", default=86_400)  # seconds a product stays cached
CATALOG_LIST_CACHE_TTL = env.int("CATALOG_LIST_CACHE_TTL", default=60)  # seconds a product list page stays cached
# A product's copies are deleted once more this long after an edit, past any request that read the
# row before it (gunicorn's timeout, 30 s): a copy written back late lives no longer than this.
CATALOG_LATE_INVALIDATION_SECONDS = env.float("CATALOG_LATE_INVALIDATION_SECONDS", default=35.0)
# Seconds an anonymous BFF product page is served from its rendered bytes: stock and rating
# shown may lag this much (checkout reserves against the real stock; degraded pages never cached).
BFF_PAGE_CACHE_TTL = env.float("BFF_PAGE_CACHE_TTL", default=5.0)
# Seconds each web process keeps its own copy of a hot anonymous response (0: off); an edit
# made through another process reaches it after at most this long (shop/cache.py).
LOCAL_CACHE_SECONDS = env.float("LOCAL_CACHE_SECONDS", default=1.0)
INVENTORY_RESERVATION_TTL_MINUTES = env.int("INVENTORY_RESERVATION_TTL_MINUTES", default=15)
INVENTORY_LOW_STOCK_THRESHOLD = env.int("INVENTORY_LOW_STOCK_THRESHOLD", default=5)
INVENTORY_EXPIRY_SWEEP_SECONDS = env.float("INVENTORY_EXPIRY_SWEEP_SECONDS", default=60.0)

# --- Orders, checkout saga and payments -------------------------------------------------------
SAGA_STEP_TIMEOUT_SECONDS = env.float("SAGA_STEP_TIMEOUT_SECONDS", default=30.0)
SAGA_MAX_STEP_ATTEMPTS = env.int("SAGA_MAX_STEP_ATTEMPTS", default=3)
SAGA_SWEEP_SECONDS = env.float("SAGA_SWEEP_SECONDS", default=10.0)
# Admission control: while this many messages wait in the broker's queues for a worker, a new
# order is refused with 503 CHECKOUT_BUSY and Retry-After instead of queueing behind them (0: off;
# the Redis broker only). Each web process recounts at most every CHECKOUT_BACKLOG_CHECK_SECONDS.
CHECKOUT_MAX_WAITING_MESSAGES = env.int("CHECKOUT_MAX_WAITING_MESSAGES", default=500)
CHECKOUT_BACKLOG_CHECK_SECONDS = env.float("CHECKOUT_BACKLOG_CHECK_SECONDS", default=0.5)
# Besides beat's task, every worker pool process sweeps overdue sagas every SAGA_SWEEP_SECONDS in a
# thread of its own, so recovery goes on while beat is down or every pool process is busy.
SAGA_WORKER_SWEEP = env.bool("SAGA_WORKER_SWEEP", default=True)
# Idempotency-Key records (HTTP) are kept at least this long; the IETF draft asks for >= 24 h.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# How long a claimed key counts as "in flight" before a retry may take over a crashed request.
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", default=60)
# Gateway-call idempotency log (payments): kept longer, the saga may retry for days.
PAYMENT_IDEMPOTENCY_TTL_HOURS = env.int("PAYMENT_IDEMPOTENCY_TTL_HOURS", default=168)

# "fake" (Stripe-like test tokens, no money moves) or "stripe"; production refuses "fake".
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="stripe" if IS_PRODUCTION else "fake")
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
# Signs Stripe's webhook deliveries (whsec_...); POST /api/v1/payments/webhooks/stripe verifies it.
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
PAYMENT_TIMEOUT_SECONDS = env.float("PAYMENT_TIMEOUT_SECONDS", default=5.0)
PAYMENT_RETRY_ATTEMPTS = env.int("PAYMENT_RETRY_ATTEMPTS", default=3)
PAYMENT_RETRY_BASE_SECONDS = env.float("PAYMENT_RETRY_BASE_SECONDS", default=0.2)
PAYMENT_RETRY_MAX_SECONDS = env.float("PAYMENT_RETRY_MAX_SECONDS", default=2.0)
PAYMENT_BREAKER_FAIL_MAX = env.int("PAYMENT_BREAKER_FAIL_MAX", default=5)
PAYMENT_BREAKER_RESET_SECONDS = env.float("PAYMENT_BREAKER_RESET_SECONDS", default=30.0)
# How long the provider may take to index a payment for its search (Stripe: "under 1 minute" in
# normal operation): finding nothing for an order means nothing was made only this long after we
# learned the key was spent. The saga asks again at the step's deadlines (30 s, then 90 s with the
# default SAGA_STEP_TIMEOUT_SECONDS), the authorization step and then the reversal's: an authorization
# not found by the authorization step's last ask is voided by the reversal instead of taken (the
# checkout fails), and a lag longer than 90 s would see the reversal's saga FAILED (staff alerted)
# before the search may conclude. Wrongly concluded, an authorization lapses on the card.
PAYMENT_PROVIDER_SEARCH_LAG_SECONDS = env.float("PAYMENT_PROVIDER_SEARCH_LAG_SECONDS", default=60.0)
# FakeGateway fault drills: added latency per call, probability of a transient failure, and
# probability of a call that hangs past PAYMENT_TIMEOUT_SECONDS (answered as a timeout).
PAYMENT_FAKE_LATENCY_MS = env.int("PAYMENT_FAKE_LATENCY_MS", default=0)
PAYMENT_FAKE_FAILURE_RATE = env.float("PAYMENT_FAKE_FAILURE_RATE", default=0.0)
PAYMENT_FAKE_SLOW_RATE = env.float("PAYMENT_FAKE_SLOW_RATE", default=0.0)
# Probability that an authorization fails inside the fake provider with a 5xx it keeps under the
# key and replays (as Stripe keeps a 500), half of them after it authorized.
PAYMENT_FAKE_KEPT_FAILURE_RATE = env.float("PAYMENT_FAKE_KEPT_FAILURE_RATE", default=0.0)

# --- Celery: broker, task behaviour, periodic tasks -------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Event deliveries are batched in the worker (shop/events/tasks.py): it must hold enough
# unacknowledged messages to fill a batch, EVENTS_BATCH_MAX per pool process at most.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=16)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=45)
# Redis redelivers an unacked message after visibility_timeout: how long a message held by a
# killed worker waits before another worker gets it. It must exceed the longest countdown we
# schedule (event retries are capped at 60 s) plus the task time limit (system check E002),
# and no more: 3 minutes by default instead of Celery's hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=180)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Kombu's Redis transport with one client object per channel (shop/events/broker.py).
    CELERY_BROKER_TRANSPORT = "shop.events.broker:Transport"
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "events-sweep-outbox": {"task": "shop.events.sweep", "schedule": 5.0},
    "events-prune": {"task": "shop.events.prune", "schedule": 3600.0},
    "orders-sagas-recover": {"task": "orders.sagas.recover", "schedule": SAGA_SWEEP_SECONDS},
    "inventory-expire-reservations": {
        "task": "inventory.expire_reservations",
        "schedule": INVENTORY_EXPIRY_SWEEP_SECONDS,
        "options": {"queue": "inventory"},
    },
    "idempotency-prune": {"task": "orders.idempotency_prune", "schedule": 3600.0},
    "inventory-idempotency-prune": {"task": "inventory.idempotency_prune", "schedule": 3600.0},
}

# --- REST framework / OpenAPI -----------------------------------------------------------------
# Lists (API envelope and admin changelists) count at most this many rows; beyond it the
# total is reported as a lower bound, flagged as such (shop/counting.py).
PAGINATION_COUNT_LIMIT = env.int("PAGINATION_COUNT_LIMIT", default=10_000)
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "shop.api.renderers.EnvelopeJSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": ["shop.api.parsers.StrictCamelCaseJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.PrincipalJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "shop.api.pagination.PagePagination",
    "PAGE_SIZE": 10,
    "EXCEPTION_HANDLER": "shop.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "shop.api.schema.EnvelopeAutoSchema",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "DEFAULT_VERSION": "v1",
    "ALLOWED_VERSIONS": ["v1", "v2"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}

# Swagger UI's bundle comes from this CDN, pinned to a major version; only /api/docs/ may load it.
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net"
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    "DESCRIPTION": "E-commerce backend: catalog, inventory, orders, payments. "
    "Every response uses the envelope {success, data, message} / {success: false, error}.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
    "ENUM_NAME_OVERRIDES": {
        # The envelope's constant ``success`` (true in pages, false in errors) would otherwise be a
        # naming collision, a warning that fails ``check --deploy``.
        "SuccessTrueEnum": [(True, True)],
        "SuccessFalseEnum": [(False, False)],
        "OrderStatusEnum": "apps.orders.models.OrderStatus",
        "PaymentStatusEnum": "apps.payments.models.PaymentStatus",
    },
    "SWAGGER_UI_DIST": f"{SWAGGER_UI_CDN}/npm/swagger-ui-dist@5",
    "SWAGGER_UI_FAVICON_HREF": f"{SWAGGER_UI_CDN}/npm/swagger-ui-dist@5/favicon-32x32.png",
}

# --- Browser-facing edge: body size, proxies, rate limits, CORS, CSP, security headers ---------
# (docs/security.md)
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# Proxies in front of the app that append to X-Forwarded-For (and set X-Forwarded-Proto).
# 0: neither header is trusted and the client is REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Rates use django-ratelimit's "N/period" syntax (period s, m, h, d, optionally multiplied: 15m).
RATELIMIT_ENABLE = env.bool("RATELIMIT_ENABLED", default=True)
RATELIMIT_USER = env("RATELIMIT_USER", default="100/m")
RATELIMIT_ANON = env("RATELIMIT_ANON", default="100/m")
RATELIMIT_LOGIN = env("RATELIMIT_LOGIN", default="5/15m")
# One account from every client together: slower, so a distributed guesser is held back but a
# stranger cannot lock the owner out with a handful of wrong passwords.
RATELIMIT_LOGIN_ACCOUNT = env("RATELIMIT_LOGIN_ACCOUNT", default="50/h")
RATELIMIT_REGISTER = env("RATELIMIT_REGISTER", default="10/h")
RATELIMIT_ORDERS = env("RATELIMIT_ORDERS", default="10/m")
RATELIMIT_PAYMENTS = env("RATELIMIT_PAYMENTS", default="5/m")
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "shop.api.ratelimit.client_ip"
# A failed INCR reads as "unknown" (not "limited"); shop.api.ratelimit then fails open or
# closed per policy (login/register closed).
RATELIMIT_FAIL_OPEN = True

# CORS for the API only (the admin is same-origin). Bearer tokens need no cookies, so
# credentialed CORS stays off unless a cookie-based frontend needs it.
CORS_ALLOWED_ORIGINS = env.list("ALLOWED_ORIGINS", default=["http://localhost:3000"])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "x-correlation-id")
CORS_EXPOSE_HEADERS = (
    "X-Total-Count",
    "X-Page-Count",
    "X-Correlation-ID",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
)
CORS_PREFLIGHT_MAX_AGE = 600
CORS_ALLOW_CREDENTIALS = env.bool("CORS_ALLOW_CREDENTIALS", default=False)

# The API answers JSON only: nothing may load or run. HTML pages get their own policy by path.
_NONE, _SELF = "'none'", "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_NONE],
        "base-uri": [_NONE],
        "form-action": [_NONE],
        "frame-ancestors": [_NONE],
    }
}
CSP_PATH_POLICIES = {
    "/admin/": {
        "default-src": [_SELF],
        "img-src": [_SELF, "data:"],
        "object-src": [_NONE],
        "base-uri": [_SELF],
        "form-action": [_SELF],
        "frame-ancestors": [_NONE],
    },
    "/api/docs/": {
        "default-src": [_NONE],
        "script-src": [_SELF, SWAGGER_UI_CDN],
        "style-src": [_SELF, SWAGGER_UI_CDN, "'unsafe-inline'"],
        "img-src": [_SELF, "data:", SWAGGER_UI_CDN],
        "connect-src": [_SELF],
        "base-uri": [_NONE],
        "form-action": [_NONE],
        "frame-ancestors": [_NONE],
    },
}

# Security headers (SecurityMiddleware, XFrameOptionsMiddleware); HSTS and HTTPS-only cookies
# in production. Health and metrics stay reachable over plain HTTP for probes and scrapers.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=IS_PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=IS_PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=IS_PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=IS_PRODUCTION)
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Observability: logs, errors, traces ------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=True)
LOGGING_CONFIG = None  # configured by shop.observability.logging at startup
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=False)
# Who may read /metrics and the per-dependency readiness report (docs/operations.md).
OPS_ALLOWED_NETWORKS = env.list("OPS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
HEALTH_READY_CACHE_SECONDS = env.float("HEALTH_READY_CACHE_SECONDS", default=2.0)
# A readiness verdict within this, whatever a dependency does (well inside gunicorn's 30 s timeout).
HEALTH_READY_TIMEOUT_SECONDS = env.float("HEALTH_READY_TIMEOUT_SECONDS", default=3.0)
# Sentry starts in ShopConfig.ready (shop.observability.errors), after every check below passed.
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_RELEASE = env("SENTRY_RELEASE", default=env("VERSION", default="1.0.0"))
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
SENTRY_TRANSPORT = None  # dotted path of a sentry_sdk Transport class (tests); None: HTTP to the DSN

# --- Production refusals (the missing-secrets check runs first, at the top) -------------------
if IS_PRODUCTION:
    _unsafe = []
    if len(JWT_SIGNING_KEY) < 32:
        _unsafe.append("JWT_SIGNING_KEY must be at least 32 characters (HS256)")
    if JWT_SIGNING_KEY == SECRET_KEY:
        _unsafe.append("JWT_SIGNING_KEY must differ from SECRET_KEY")
    if RATELIMIT_ENABLE and not REDIS_URL:
        _unsafe.append("REDIS_URL is required for rate limits shared by all processes")
    # The well-known development and example values sign nothing in production.
    for _name, _value in (("SECRET_KEY", SECRET_KEY), ("JWT_SIGNING_KEY", JWT_SIGNING_KEY)):
        if "change-me" in _value or "insecure" in _value:
            _unsafe.append(f"{_name} is a published placeholder; generate a random one")
    # The fake gateway approves test tokens without moving money: orders would ship for free.
    if PAYMENT_GATEWAY != "stripe":
        _unsafe.append(f"PAYMENT_GATEWAY must be 'stripe' (not {PAYMENT_GATEWAY!r})")
    if not STRIPE_API_KEY:
        _unsafe.append("STRIPE_API_KEY is required")
    if not STRIPE_WEBHOOK_SECRET:
        _unsafe.append("STRIPE_WEBHOOK_SECRET is required (provider-side refunds and disputes)")
    if not STRIPE_API_BASE.startswith("https://"):
        _unsafe.append("STRIPE_API_BASE must be an https:// URL")
    if _unsafe:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(_unsafe) + ".")

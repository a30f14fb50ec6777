"""Test settings: the real PostgreSQL (one database per context) and the real Redis.

Only defaults are set here; the environment still wins, so CI can point elsewhere.
"""

import os

from shop.contexts import CONTEXTS, database_url_variable

for _alias in CONTEXTS:
    os.environ.setdefault(database_url_variable(_alias), f"postgres://postgres@127.0.0.1:5432/shop_{_alias}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("LOG_JSON", "true")
os.environ.setdefault("DB_POOL", "false")
# Per-process response copies would outlive the per-test cache flush; the test that covers
# them switches them on.
os.environ.setdefault("LOCAL_CACHE_SECONDS", "0")
# Limits stay switched on (the machinery runs in every API test) but generous, so that suites
# logging in many users from 127.0.0.1 are not throttled; rate-limit tests set real rates.
for _name in ("USER", "ANON", "LOGIN", "LOGIN_ACCOUNT", "REGISTER", "ORDERS", "PAYMENTS"):
    os.environ.setdefault(f"RATELIMIT_{_name}", "100000/m")

# Admission control counts what waits in the broker, and tests that publish without a worker
# leave messages there; the tests of admission control switch it on.
os.environ.setdefault("CHECKOUT_MAX_WAITING_MESSAGES", "0")

from config.settings import *  # noqa: E402,F403

# Hashing cost is not under test (a test pins Argon2 as the production hasher); speed is.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Test-only event types and steerable subscribers (no models; the worker subprocess loads them too).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.eventprobe"]  # noqa: F405

# Parallel test runs on one machine (several developers, or xdist) need their own databases.
_suffix = os.environ.get("TEST_DB_SUFFIX", "")
for _alias in CONTEXTS:
    DATABASES[_alias].setdefault("TEST", {})["NAME"] = f"test_shop_{_alias}{_suffix}"  # noqa: F405

# A worker subprocess of a tracing test writes its spans where the test can read them.
if os.environ.get("SHOP_TEST_SPAN_DIR"):
    OTEL_EXPORTER_FACTORY = "tests.support.spanfile.JsonLinesExporter"
# ... and its Sentry events, through a local transport (never the network).
if os.environ.get("SHOP_TEST_SENTRY_FILE"):
    SENTRY_TRANSPORT = "tests.support.sentryfile.FileTransport"

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from tests.support.worker import WorkerProcess, purge_broker

CONTEXT_DBS = list(settings.CONTEXTS)
WORKER_LOG_SHOWN = 20_000  # characters of each worker's log, its end, in a failed test's report


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Each run starts with empty test Redis databases (cache, rate limits, broker)."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    purge_broker()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from shop import cache as shop_cache

    cache.clear()
    shop_cache.local_clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran real workers shows what they logged: their processes and files are gone
    by the time anyone reads the report (in CI, with the clone)."""
    report = yield
    if report.when == "call" and report.failed:
        workers = [item.funcargs.get("celery_worker")] + getattr(item.funcargs.get("worker_factory"), "started", [])
        for worker in filter(None, workers):
            report.sections.append((f"worker log ({worker.log_path.name})", worker.log()[-WORKER_LOG_SHOWN:]))
    return report


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def celery_worker(django_db_setup, django_db_blocker):
    """A real worker subprocess for one test; stopped (gracefully) afterwards."""
    purge_broker()
    worker = WorkerProcess().start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(django_db_setup):
    """Start (and kill) workers at will; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []
    purge_broker()

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs).start()
        started.append(worker)
        return worker

    start.started = started
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def customer():
    """A signed-up customer (accounts database)."""
    from tests.factories.accounts import UserFactory

    return UserFactory()


@pytest.fixture
def customer_api(api_client, customer):
    """The shared ``api_client``, authenticated as ``customer``."""
    api_client.force_authenticate(customer)
    return api_client


@pytest.fixture
def admin_browser():
    """A Django test client logged in to the admin as a superuser."""
    from django.test import Client

    from tests.factories.accounts import UserFactory

    client = Client()
    client.force_login(UserFactory(superuser=True))
    return client


@pytest.fixture
def fresh_readiness():
    """Tests that break a dependency on purpose never reuse another test's readiness verdict."""
    from shop.health import checks

    checks.forget()
    yield
    checks.forget()


@pytest.fixture
def staff_client():
    """An API client of its own, authenticated as a staff user."""
    from tests.factories.accounts import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(staff=True))
    return client


@pytest.fixture(autouse=True)
def _forced_users_are_principals(monkeypatch):
    """``force_authenticate(user)`` skips the authentication class; hand views the principal the
    real one would, so tests see what production sees (``request.user`` is never a model)."""
    from rest_framework.request import ForcedAuthentication

    from apps.accounts.authentication import principal_of
    from apps.accounts.models import User

    original = ForcedAuthentication.authenticate

    def authenticate(self, request):
        user, token = original(self, request)
        return (principal_of(user) if isinstance(user, User) else user), token

    monkeypatch.setattr(ForcedAuthentication, "authenticate", authenticate)

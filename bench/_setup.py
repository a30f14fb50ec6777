"""Preparation of the checkout benchmark: its own databases, Redis DBs, migrations and seed data.

Only ``shop_bench_<context>`` databases and Redis DBs 4 (broker) and 5 (cache) are touched.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

from shop.contexts import CONTEXTS, database_url_variable

ROOT = Path(__file__).resolve().parents[1]
DATABASES = [f"shop_bench_{ctx}" for ctx in CONTEXTS]
PG_URL = "postgres://postgres@127.0.0.1:5432"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname="
REDIS_URL = "redis://127.0.0.1:6379/5"
BROKER_URL = "redis://127.0.0.1:6379/4"
PASSWORD = "bench-Passphrase-4821-quiet-river"
STOCK = 1_000_000


def environment(prefix: str = "shop_bench", *, redis_url: str = REDIS_URL, broker_url: str = BROKER_URL) -> dict:
    """What the production processes get (and, with the pool off, this process). ``prefix`` names the
    databases (``<prefix>_<context>``); the fault campaign (bench/chaos.py) uses its own."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and k != "TEST_DB_SUFFIX"}
    env.update(
        {database_url_variable(ctx): f"{PG_URL}/{prefix}_{ctx}" for ctx in CONTEXTS},
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ENV="development",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        RATELIMIT_ENABLED="false",
        DB_POOL="true",
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=broker_url,
        ALLOWED_HOSTS="127.0.0.1",
        JWT_ACCESS_MINUTES="600",
        PYTHONUNBUFFERED="1",
    )
    return env


def recreate_databases(databases: list[str] = DATABASES) -> None:
    import psycopg

    with psycopg.connect(PG_DSN + "postgres", autocommit=True) as conn:
        for name in databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_databases(databases: list[str] = DATABASES) -> None:
    import psycopg

    with psycopg.connect(PG_DSN + "postgres", autocommit=True) as conn:
        for name in databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis() -> None:
    import redis

    for url in (REDIS_URL, BROKER_URL):
        redis.Redis.from_url(url).flushdb()


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate_all", "-v", "0"], cwd=ROOT, env=env, check=True)


def seed(*, users: int, products: int, stock: dict[int, int] | None = None) -> tuple[list[str], list[uuid.UUID]]:
    """Users and stocked products through the services (events go to the broker's queues).
    ``stock`` overrides ``STOCK`` for some products, by their index in the returned id list."""
    from django.test.utils import override_settings
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.accounts import services as accounts
    from apps.catalog import demo
    from apps.catalog import facade as catalog
    from apps.catalog import services as catalog_services
    from apps.inventory import services as inventory

    tokens = []
    # Nobody signs in during the run (tokens are minted here), so Argon2's cost is not under test.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for n in range(users):
            user = accounts.user_register(email=f"bench{n}@example.com", password=PASSWORD, name=f"Bench {n}")
            tokens.append(str(AccessToken.for_user(user)))
    for batch in demo.products(products, batch=100):
        catalog_services.catalog_seed(categories=demo.categories(), products=batch)
    product_ids = sorted(catalog.product_ids_list())
    stock = stock or {}
    inventory.stock_seed(quantities={pid: stock.get(n, STOCK) for n, pid in enumerate(product_ids)})
    return tokens, product_ids

"""manage.py seed_demo: realistic, idempotent, with stock, on PostgreSQL and in the embedded mode."""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.catalog.models import Category, Product
from apps.inventory.models import StockItem, StockMovement
from shop.events.store import outbox_model
from tests.conftest import CONTEXT_DBS
from tests.support import events as testing

ROOT = Path(__file__).resolve().parents[2]


def counts() -> dict:
    return {
        "categories": Category.objects.count(),
        "products": Product.objects.count(),
        "stock": StockItem.objects.filter(on_hand__gt=0).count(),
        "items": StockItem.objects.count(),
        "movements": StockMovement.objects.count(),
        "events": outbox_model("catalog").objects.count(),
    }


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_default_seed_is_a_realistic_catalog_with_stock_and_is_idempotent(capsys):
    call_command("seed_demo", no_progress=True)
    first = counts()
    assert first["categories"] >= 10 and first["products"] == 1000 and first["items"] == 1000
    assert first["stock"] > 900  # a few demo products are sold out on purpose
    assert first["events"] == 1000  # one catalog.product_created per product
    assert Product.objects.values("category").distinct().count() >= 10
    assert "Demo data ready." in capsys.readouterr().out

    call_command("seed_demo", no_progress=True)
    assert counts() == first

    testing.drain()  # the events arrive late: the stock items they would open already exist
    assert counts() == first


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_products_option_grows_the_catalog_without_touching_existing_stock():
    call_command("seed_demo", products=20, no_progress=True)
    before = dict(StockItem.objects.values_list("product_id", "on_hand"))
    call_command("seed_demo", products=30, no_progress=True)
    after = dict(StockItem.objects.values_list("product_id", "on_hand"))
    assert len(after) == 30 and {pid: after[pid] for pid in before} == before


@pytest.mark.slow
def test_seed_works_in_the_embedded_sqlite_mode_with_no_environment(tmp_path):
    """What ``make run`` does on a fresh clone: no database URLs, no Redis, no broker."""
    for name in ("apps", "config", "shop"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path))}
    for command in (["migrate_all", "-v", "0"], ["seed_demo", "--products", "40", "--no-progress"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]

    with sqlite3.connect(tmp_path / "var" / "catalog.sqlite3") as catalog:
        assert catalog.execute("SELECT count(*) FROM catalog_category").fetchone()[0] >= 10
        assert catalog.execute("SELECT count(*) FROM catalog_product").fetchone()[0] == 40
    with sqlite3.connect(tmp_path / "var" / "inventory.sqlite3") as inventory:
        assert inventory.execute("SELECT count(*) FROM inventory_stockitem").fetchone()[0] == 40
        # Celery is eager here: the product_created handler ran inline, through the inbox.
        consumer = "inventory.create_stock_item"
        query = "SELECT count(*) FROM inventory_inboxmessage WHERE consumer = ?"
        assert inventory.execute(query, [consumer]).fetchone()[0] == 40


@pytest.mark.django_db(databases=CONTEXT_DBS)
def test_demo_data_is_refused_in_production_and_leaves_a_real_products_stock_alone(settings):
    """Run in production, seed_inventory gave units to every active product without stock history,
    real ones not yet stocked included, which the shop then sold."""
    from django.core.management.base import CommandError

    from apps.inventory.models import StockItem
    from tests.factories.catalog import ProductFactory

    product = ProductFactory()
    StockItem.objects.create(product_id=product.id)  # as the product's event opened it: nothing on hand
    settings.IS_PRODUCTION = True

    for command in ("seed_demo", "seed_catalog", "seed_inventory"):
        with pytest.raises(CommandError, match="refused in production"):
            call_command(command, no_progress=True)

    assert StockItem.objects.get(product_id=product.id).on_hand == 0

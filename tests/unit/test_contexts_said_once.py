"""The contexts are named once, in ``shop.contexts``; files that cannot import it must agree with it.

Python code, the Makefile and the shell scripts read ``shop.contexts`` directly. TOML, SQL and
YAML cannot, so a context added or removed there but not here (or the reverse) fails this test.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from shop.contexts import CONTEXTS, WORKER_QUEUES, database_url_variable

ROOT = Path(__file__).resolve().parents[2]
NON_DATABASE_CONTEXTS = {"bff"}  # the backend-for-frontend composes the others; it owns no data


def _contracts() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {contract["name"]: contract for contract in config["tool"]["importlinter"]["contracts"]}


def test_import_linter_boundaries_list_exactly_the_contexts():
    (boundaries,) = [c for c in _contracts().values() if c["type"] == "context_boundaries"]
    listed = {module.removeprefix("apps.") for module in boundaries["contexts"]}
    assert listed - NON_DATABASE_CONTEXTS == set(CONTEXTS)


def test_import_linter_domain_layers_cover_every_context():
    (layers,) = [c for c in _contracts().values() if "rest_framework" in c.get("forbidden_modules", [])]
    for layer in ("models", "services", "selectors"):
        listed = {m.split(".")[1] for m in layers["source_modules"] if m.startswith("apps.") and m.endswith(layer)}
        assert listed == set(CONTEXTS), layer


def test_docker_creates_one_database_per_context():
    sql = (ROOT / "docker" / "postgres-init.sql").read_text()
    assert re.findall(r"CREATE DATABASE shop_(\w+);", sql) == list(CONTEXTS)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert sorted(re.findall(r"(\w+_DATABASE_URL):", compose)) == sorted(map(database_url_variable, CONTEXTS))


def test_shell_and_make_read_the_module():
    queues = subprocess.run(
        [sys.executable, "-m", "shop.contexts", "--queues"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert queues.split(",") == list(WORKER_QUEUES)
    make = subprocess.run(["make", "-n", "worker"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"-Q {queues} " in make


def test_the_python_side_derives_from_the_module():
    from django.conf import settings

    from config.router import alias_for_app

    assert settings.CONTEXTS == CONTEXTS
    assert set(settings.DATABASES) == {"default", *CONTEXTS}
    assert {f"apps.{context}" for context in CONTEXTS} <= set(settings.INSTALLED_APPS)
    assert all(alias_for_app(context) == context for context in CONTEXTS)


def test_the_dependency_graph_contract_places_every_context():
    (graph,) = [c for c in _contracts().values() if c["type"] == "layers"]
    placed = {name.strip().removeprefix("apps.") for layer in graph["layers"] for name in layer.split("|")}
    assert placed - NON_DATABASE_CONTEXTS == set(CONTEXTS)

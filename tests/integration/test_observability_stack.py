"""The dashboard is real: Debian's Prometheus scrapes a live stack that just placed orders.

gunicorn (config/gunicorn.py) and a Celery worker with beat each run as a multiprocess group,
Prometheus runs with the project's scrape config (docker/observability/prometheus.yml, its
targets pointed at this test's ports and a 1 s interval), and every PromQL expression of the
provisioned Grafana dashboard must return data through Prometheus' HTTP API. Orders are
placed in two waves so that rates see increases after the series first appeared.
"""

import json
import math
import subprocess
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
import yaml

from tests.conftest import CONTEXT_DBS
from tests.e2e.checkout import order_body
from tests.factories.orders import stocked_products
from tests.support.ports import free_port
from tests.support.web import GunicornProcess
from tests.support.worker import ROOT, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, databases=CONTEXT_DBS)]

OBSERVABILITY = ROOT / "docker" / "observability"
PASSWORD = "a-long-and-unusual-passphrase-42"


def http_json(url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((OBSERVABILITY / "grafana" / "dashboards" / "shop.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def scrape_config_for(tmp_path, web_port: int, worker_port: int):
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(OBSERVABILITY / "alerts.yml")]
    targets = {"web": f"127.0.0.1:{web_port}", "worker": f"127.0.0.1:{worker_port}"}
    assert {job["job_name"] for job in config["scrape_configs"]} == set(targets)
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(tmp_path):
    started = []

    def start(config_path):
        port = free_port()
        log = (tmp_path / "prometheus.log").open("w")
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200
            except OSError:
                return False

        wait_until(ready, timeout=30, message="prometheus ready")
        return base

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    body = http_json(url)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_every_dashboard_panel_returns_data_from_a_live_stack(worker_factory, prometheus, tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "worker").mkdir()
    worker_port = free_port()
    worker_factory(beat=True, env={"PROMETHEUS_MULTIPROC_DIR": tmp_path / "worker", "WORKER_OPS_PORT": worker_port})
    web = GunicornProcess(env={"PROMETHEUS_MULTIPROC_DIR": tmp_path / "web", "DB_POOL": "true"}).start()
    try:
        base = prometheus(scrape_config_for(tmp_path, web.port, worker_port))
        products = stocked_products(2, price=Decimal("7.00"), on_hand=50)
        http_json(f"{web.url}/api/v1/auth/register", {"email": "dash@example.com", "password": PASSWORD, "name": "D"})
        token = http_json(f"{web.url}/api/v1/auth/token", {"email": "dash@example.com", "password": PASSWORD})
        access = token["data"]["access"]

        completed = 0
        for wave in (2, 2):
            for _ in range(wave):
                http_json(f"{web.url}/api/v1/orders", order_body([p.id for p in products]), token=access)
            completed += wave
            for expr in ("sum(orders_created_total)", 'sum(checkout_saga_outcomes_total{outcome="completed"})'):
                wait_until(
                    lambda n=completed, e=expr: any(float(r["value"][1]) >= n for r in query(base, e)),
                    timeout=60,
                    message=f"{expr} >= {completed} scraped (web and worker)",
                )
        wait_until(lambda: query(base, "events_sweeps_total"), timeout=30, message="a beat sweep scraped")
        up = query(base, "up")
        assert {r["metric"]["job"]: r["value"][1] for r in up} == {"web": "1", "worker": "1"}

        empty, all_nan = [], []
        for title, expr in dashboard_expressions():
            result = query(base, expr)
            if not result:
                empty.append(f"{title}: {expr}")
            elif all(math.isnan(float(r["value"][1])) for r in result):
                all_nan.append(f"{title}: {expr}")
        targets = http_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
        health = "\n".join(f"{t['labels']['job']}: {t['health']} {t['lastError']}" for t in targets)
        assert not empty, "panels without data:\n" + "\n".join(empty) + "\n" + health
        assert not all_nan, "panels with only NaN:\n" + "\n".join(all_nan)
    finally:
        web.stop()


def test_the_operations_doc_lists_every_dashboard_query():
    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = [f"{title}: {expr}" for title, expr in dashboard_expressions() if expr.replace("|", "\\|") not in doc]
    assert not missing, "dashboard queries missing from docs/operations.md:\n" + "\n".join(missing)

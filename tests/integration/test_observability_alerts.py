"""The alert rules shipped in docker/observability are valid and fire when (and only when) they should."""

import subprocess

from tests.support.worker import ROOT

RULES_DIR = ROOT / "docker" / "observability"


def promtool(*args: str) -> subprocess.CompletedProcess:
    """Debian's promtool (`make test` installs the prometheus package when it is missing)."""
    return subprocess.run(["promtool", *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_check():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_their_unit_tests_expect():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_line_in_the_operations_doc():
    import yaml

    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"][0]["rules"]
    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = [r["alert"] for r in rules if f"`{r['alert']}`" not in doc]
    assert not missing, f"alerts without a runbook line in docs/operations.md: {missing}"


def test_the_metric_catalogue_lists_every_metric_the_code_defines():
    from prometheus_client.metrics import MetricWrapperBase

    from shop.observability import metrics

    defined = {
        m._name + ("_total" if m._type == "counter" else "")
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    defined |= set(metrics._scrape_gauges) | {"shop_scrape_gauges_ok"}
    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in defined if f"| `{name}` |" not in doc)
    assert not missing, f"metrics missing from the catalogue in docs/operations.md: {missing}"

"""docs/alerts/polaris-rules.yml is valid Prometheus rules, its alerts fire as intended (promtool unit
tests), and every metric it reads is one this project exports."""

import re
from pathlib import Path

import pytest
import yaml

from .promtool import promtool, requires_promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts" / "polaris-rules.yml"
RULE_TESTS = ROOT / "docs" / "alerts" / "polaris-rules.test.yml"

EXPORTED = {
    "sla_records_breached_total",
    "sla_records_at_risk",
    "outbox_oldest_pending_age_seconds",
    "outbox_dispatch_lag_seconds_bucket",
    "outbox_events_dead",
    "outbox_events_processed_total",
    "webhook_deliveries_total",
    "polaris_state_collector_up",
    "up",  # Prometheus' own per-target series
}


@requires_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


@requires_promtool
def test_promtool_unit_tests_of_the_rules_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_rules_cover_breaches_dispatch_lag_dead_events_and_webhook_failures():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {
        "PolarisSLABreached",
        "PolarisDispatchLagHigh",
        "PolarisDeadEvents",
        "PolarisWebhookFailures",
    } <= set(alerts)
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]


def test_rules_only_read_metrics_we_export():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    names = set()
    for group in groups:
        for rule in group["rules"]:
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", rule["expr"])
            names |= {
                name
                for name in re.findall(
                    r"\b([a-z_]+(?:_total|_seconds_bucket|_seconds|_dead|_at_risk|_up)|up)\b", expr
                )
            }
    assert names
    assert names <= EXPORTED, names - EXPORTED


@pytest.mark.django_db
def test_every_metric_the_rules_read_is_in_the_scrape(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    text = client.get("/metrics").content.decode()
    for name in EXPORTED - {"up"}:
        family = name.removesuffix("_bucket")
        assert f"# TYPE {family} " in text, family

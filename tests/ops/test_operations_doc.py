"""docs/operations.md is the operations runbook, and it documents every variable ops reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()


def test_runbook_sections():
    for heading in (
        "## Start and stop",
        "## Scaling out",
        "## Metrics",
        "## Logs",
        "## Dead letters and replay",
        "## Breach triage",
    ):
        assert heading in RUNBOOK
    assert "**Beat: exactly one.**" in RUNBOOK


def test_every_environment_variable_of_the_ops_code_is_documented():
    sources = [
        ROOT / "gunicorn.conf.py",
        ROOT / "polaris" / "logging.py",
        *sorted((ROOT / "ops").glob("*.py")),
    ]
    names = set()
    for source in sources:
        names |= set(re.findall(r"os\.environ\.get\(\"([A-Z_]+)\"", source.read_text()))
    names |= {"CELERY_METRICS_PORT", "CELERY_METRICS_ADDR"}  # read in settings.py
    assert names
    missing = {name for name in names if f"`{name}`" not in RUNBOOK}
    assert not missing, missing


def test_every_alert_has_a_runbook_entry():
    alerts = set(re.findall(r"- alert: (\w+)", (ROOT / "docs" / "alerts" / "polaris-rules.yml").read_text()))
    assert alerts
    assert {alert for alert in alerts if f"`{alert}`" not in RUNBOOK} == set()

"""/metrics: the specification's names, the scrape-time database gauges, django-prometheus, promtool-clean."""

import re

import pytest
from django.db import DatabaseError
from prometheus_client import REGISTRY

from ops import metrics, stats
from outbox.models import OutboxEvent
from polaris.errors import InvalidTransition
from workflow.services.tasks import task_transition

from .promtool import promtool, requires_promtool


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text output (labels must match exactly)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


@pytest.mark.django_db
def test_database_gauges_count_tasks_per_state_and_the_outbox_backlog(client, make_task, agent):
    make_task()
    task = make_task(title="Second")
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    pending = OutboxEvent.objects.filter(status="pending").count()

    text = scrape(client)

    assert "# TYPE active_tasks_total untyped" in text
    assert sample(text, "active_tasks_total", state="new") == 1
    assert sample(text, "active_tasks_total", state="in_progress") == 1
    assert sample(text, "active_tasks_total", state="cancelled") == 0
    assert sample(text, "workflow_action_plans", state="draft") == 0
    assert sample(text, "outbox_events_pending") == pending == 3
    assert sample(text, "outbox_events_dead") == 0
    assert sample(text, "outbox_oldest_pending_age_seconds") >= 0
    assert sample(text, "polaris_state_collector_up") == 1


@pytest.mark.django_db
def test_dead_events_and_oldest_pending_age(client, make_task):
    from datetime import timedelta

    from django.utils import timezone

    make_task()
    make_task(title="Other")
    first, second = OutboxEvent.objects.order_by("occurred_at")
    OutboxEvent.objects.filter(pk=first.pk).update(status="dead")
    OutboxEvent.objects.filter(pk=second.pk).update(occurred_at=timezone.now() - timedelta(minutes=10))

    text = scrape(client)

    assert sample(text, "outbox_events_dead") == 1
    assert sample(text, "outbox_events_pending") == 1
    assert 600 <= sample(text, "outbox_oldest_pending_age_seconds") < 660


@pytest.mark.django_db
def test_transition_counter_and_django_prometheus_metrics_are_exported(client, make_task, agent):
    task = make_task()
    with pytest.raises(InvalidTransition):
        task_transition(task_id=task.pk, target_state="completed", actor=agent)

    text = scrape(client)

    assert sample(text, "workflow_transition_total", entity_type="task", result="invalid_transition") >= 1
    # django-prometheus: requests (this very scrape went through its middleware) and database metrics.
    assert "django_http_requests_before_middlewares_total" in text
    assert "django_http_responses_total_by_status_total" in text
    assert "django_db_execute_total" in text
    for name in (
        "workflow_transition_total",
        "outbox_events_processed_total",
        "automation_trigger_evaluations_total",
        "sla_records_breached_total",
        "webhook_deliveries_total",
    ):
        assert f"# TYPE {name} counter" in text
    assert "# TYPE outbox_dispatch_lag_seconds histogram" in text


@pytest.mark.django_db
def test_collector_reports_down_instead_of_failing_the_scrape(client, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(stats, "metrics_snapshot", broken)
    text = scrape(client)
    assert sample(text, "polaris_state_collector_up") == 0
    assert "active_tasks_total" not in text.replace("# ", "")  # no stale figures
    assert "django_http_requests_before_middlewares_total" in text


def test_collector_is_registered_once():
    metrics.collector_register()
    metrics.collector_register()
    collectors = [c for c in REGISTRY._collector_to_names if isinstance(c, metrics.WorkflowStateCollector)]
    assert len(collectors) == 1


@requires_promtool
@pytest.mark.django_db
def test_promtool_accepts_the_exposition(client, make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    client.get("/api/workflow/stats")
    result = promtool("check", "metrics", stdin=scrape(client).encode())
    assert result.returncode == 0, (result.stdout + result.stderr).decode()

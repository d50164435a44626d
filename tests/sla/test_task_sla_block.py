"""The task representation's ``sla`` block and the ``sla_status`` list filter, registered through
``workflow.extensions`` (workflow never imports sla)."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from polaris.errors import ValidationFailed
from sla.models import SLARecordStatus
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10
from workflow import extensions
from workflow.models import Task


def test_sla_registers_its_extensions():
    assert "sla" in extensions.task_fields
    assert "sla_status" in extensions.task_filters
    assert extensions.task_queryset_hooks


def render(task):
    return extensions.task_fields["sla"](task)


def with_hooks(queryset):
    for hook in extensions.task_queryset_hooks:
        queryset = hook(queryset)
    return queryset


def test_block_of_a_running_record(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task()
    with time_machine.travel(MONDAY_10 + timedelta(minutes=20), tick=False):
        block = render(Task.objects.get(pk=task.pk))
    assert block == {
        "config_name": intake_config.name,
        "target_minutes": 60,
        "started_at": "2026-03-02T10:00:00Z",
        "due_at": "2026-03-02T11:00:00Z",
        "status": "running",
        "paused_seconds": 0,
        "breached_at": None,
        "remaining_seconds": 40 * 60,
    }


def test_remaining_time_is_frozen_while_paused(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        clock.move_to(MONDAY_10 + timedelta(minutes=10))
        move(task, "blocked", reason="waiting")
        clock.move_to(MONDAY_10 + timedelta(hours=5))
        block = render(Task.objects.get(pk=task.pk))
    assert block["status"] == "paused"
    assert block["remaining_seconds"] == 50 * 60


def test_block_of_a_breached_record(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task()
    sla_scan(now=MONDAY_10 + timedelta(hours=2))
    block = render(Task.objects.get(pk=task.pk))
    assert block["status"] == "breached"
    assert block["breached_at"] == "2026-03-02T11:00:00Z"
    assert block["remaining_seconds"] is None


def test_a_task_without_sla_has_a_null_block(make_task):
    assert render(make_task(task_type="home-visit")) is None


def test_list_hook_fetches_records_without_n_plus_one(make_task, make_config, intake_config):
    for number in range(5):
        make_task(title=f"intake {number}")
        make_task(title=f"visit {number}", task_type="home-visit")  # no SLA
    with CaptureQueriesContext(connection) as queries:
        blocks = [render(task) for task in with_hooks(Task.objects.all())]
    # The tasks with their SLA records in one query, and automation's timers prefetched in one more:
    # a constant, whatever the number of tasks.
    assert len(queries) == 2
    assert sum(block is not None for block in blocks) == 5


def test_sla_status_filter(make_task, move, make_config, intake_config):
    make_config(name="visits", task_type="home-visit", target_minutes=100, warning_percentages=[50])
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        make_task(title="late")  # intake, 60 minutes
        paused = make_task(title="paused")
        move(paused, "blocked", reason="waiting")
        done = make_task(title="done")
        move(done, "in_progress")
        move(done, "completed")
        make_task(title="risky", task_type="home-visit")  # warns at minute 50, due at 100
        clock.move_to(MONDAY_10 + timedelta(minutes=60))
        make_task(title="calm", task_type="home-visit")  # warns at minute 110
        make_task(title="untracked", task_type="other")
        clock.move_to(MONDAY_10 + timedelta(minutes=95))
        sla_scan()

        def titles(value):
            filtered = extensions.task_filters["sla_status"](Task.objects.all(), value)
            return set(filtered.values_list("title", flat=True))

        assert titles("breached") == {"late"}
        assert titles("paused") == {"paused"}
        assert titles("met") == {"done"}
        assert titles("running") == {"calm"}  # running and not at risk: what each task's sla.status says
        assert titles("at_risk") == {"risky"}


def test_the_filter_takes_exactly_the_values_workflow_declares(db):
    # One tuple (workflow.extensions.SLA_STATUS_VALUES) for sla's filter and workflow's schema: every
    # record status but cancelled (the task's own state says that), and at_risk. A new status fails here.
    assert set(extensions.SLA_STATUS_VALUES) == set(SLARecordStatus.values) - {"cancelled"} | {"at_risk"}
    for value in extensions.SLA_STATUS_VALUES:
        extensions.task_filters["sla_status"](Task.objects.all(), value)  # no ValidationFailed


def test_bad_sla_status_is_a_validation_error(db):
    with pytest.raises(ValidationFailed) as caught:
        extensions.task_filters["sla_status"](Task.objects.all(), "late")
    assert "sla_status" in caught.value.details


def test_task_api_carries_the_block_and_the_filter(agent, make_task, intake_config):
    client = APIClient()
    client.force_authenticate(agent)
    task = make_task()
    detail = client.get(f"/api/workflow/tasks/{task.pk}").json()
    assert detail["sla"]["config_name"] == intake_config.name
    assert detail["sla"]["status"] == "running"
    listed = client.get("/api/workflow/tasks", {"sla_status": "running"}).json()
    assert [row["id"] for row in listed["results"]] == [str(task.pk)]
    assert listed["results"][0]["sla"]["target_minutes"] == 60
    bad = client.get("/api/workflow/tasks", {"sla_status": "late"})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "VALIDATION_ERROR"


def test_transition_response_shows_the_record_as_the_transition_left_it(agent, make_task, intake_config):
    client = APIClient()
    client.force_authenticate(agent)
    task = make_task()
    client.post(f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "in_progress"}, format="json")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/api/workflow/tasks/{task.pk}/transition",
            {"target_state": "blocked", "reason": "waiting for documents"},
            format="json",
        )
    assert response.status_code == 200, response.json()
    assert response.json()["task"]["sla"]["status"] == "paused"
    assert response.json()["task"]["sla"]["config_name"] == intake_config.name
    # The record locked by the transition is the one rendered; only its config is read for the response.
    record_reads = [q["sql"] for q in queries.captured_queries if "sla_slarecord" in q["sql"]]
    assert len(record_reads) == 2, record_reads  # the FOR UPDATE read and the pause UPDATE

"""``?sla_status=`` and each task's own ``sla.status`` agree: a task is listed under a status exactly when
its representation shows that status (``at_risk`` included), through the API and for every value."""

from datetime import timedelta

import pytest
import time_machine
from django.db.models import Count

from sla.models import SLARecord, SLARecordStatus
from sla.scan import sla_scan
from sla.selectors import sla_at_risk_q, sla_at_risk_relation, sla_record_at_risk
from tests.sla.conftest import MONDAY_10
from tests.support.api import bearer_client
from workflow.extensions import SLA_STATUS_VALUES
from workflow.models import Task

pytestmark = pytest.mark.django_db
TASKS = "/api/workflow/tasks"


def test_each_listed_task_shows_the_status_it_was_filtered_by(
    make_task, move, make_config, intake_config, agent
):
    make_config(name="visits", task_type="home-visit", target_minutes=100, warning_percentages=[50])
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        make_task(title="late")  # intake, 60 minutes: breached by the scan at minute 95
        paused = make_task(title="paused")
        move(paused, "blocked", reason="waiting")
        done = make_task(title="done")
        move(done, "in_progress")
        move(done, "completed")
        make_task(title="risky", task_type="home-visit")  # warns at minute 50 (the scan sends it)
        clock.move_to(MONDAY_10 + timedelta(minutes=50))
        make_task(title="past warning, not yet scanned", task_type="home-visit")  # warns at minute 100
        clock.move_to(MONDAY_10 + timedelta(minutes=55))
        sla_scan()
        clock.move_to(MONDAY_10 + timedelta(minutes=60))
        make_task(title="calm", task_type="home-visit")  # warns at minute 110
        clock.move_to(MONDAY_10 + timedelta(minutes=95))
        sla_scan()
        clock.move_to(MONDAY_10 + timedelta(minutes=101))  # past the second visit's warning, no scan since
        api = bearer_client(agent)
        seen = {}
        for value in SLA_STATUS_VALUES:
            response = api.get(TASKS, {"sla_status": value})
            assert response.status_code == 200, response.json()
            for task in response.json()["results"]:
                assert task["sla"]["status"] == value, (value, task["title"], task["sla"])
                seen[task["title"]] = value
        everything = {task["title"]: task["sla"] for task in api.get(TASKS).json()["results"]}
    assert seen == {
        "late": "breached",
        "paused": "paused",
        "done": "met",
        "risky": "at_risk",
        "past warning, not yet scanned": "at_risk",
        "calm": "running",
    }
    # Every task with a clock is listed under exactly the status it shows.
    assert {title: block["status"] for title, block in everything.items() if block} == seen


def test_the_python_rule_and_the_sql_rule_agree_record_by_record(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        tasks = [make_task(title=f"t{n}") for n in range(6)]
    now = MONDAY_10 + timedelta(minutes=30)
    records = list(SLARecord.objects.filter(task__in=tasks).order_by("task__title"))
    # Every combination of the three clauses, and a stopped clock that would otherwise match.
    shapes = [
        {
            "warnings_sent": [],
            "next_warning_at": now + timedelta(minutes=5),
            "due_at": now + timedelta(hours=1),
        },
        {"warnings_sent": [75], "next_warning_at": None, "due_at": now + timedelta(hours=1)},
        {
            "warnings_sent": [],
            "next_warning_at": now - timedelta(minutes=1),
            "due_at": now + timedelta(hours=1),
        },
        {"warnings_sent": [], "next_warning_at": None, "due_at": now - timedelta(seconds=1)},
        {"warnings_sent": [], "next_warning_at": None, "due_at": now + timedelta(hours=1)},
        {"warnings_sent": [75], "next_warning_at": None, "due_at": now, "status": SLARecordStatus.PAUSED},
    ]
    for record, shape in zip(records, shapes, strict=True):
        SLARecord.objects.filter(pk=record.pk).update(**shape)
    in_sql = set(SLARecord.objects.filter(sla_at_risk_q(now=now)).values_list("pk", flat=True))
    in_python = {record.pk for record in SLARecord.objects.all() if sla_record_at_risk(record, now=now)}
    assert in_sql == in_python
    assert len(in_sql) == 3  # warned, past the warning time, past due; not the calm, not the paused one
    # The relation the workload counts in its grouped pass (``task_relations``) keeps the same records.
    counted = Task.objects.filter(pk__in=[t.pk for t in tasks]).annotate(risky=sla_at_risk_relation(now))
    assert set(counted.filter(risky__isnull=False).values_list("risky", flat=True)) == in_sql
    assert counted.aggregate(n=Count("risky"), all=Count("id")) == {"n": 3, "all": 6}

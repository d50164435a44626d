"""SLA attainment counts the tasks that had an SLA, under each record's current measurement: through the
real task and SLA services (completion, repair), dispatch, and the report API."""

from datetime import timedelta

import pytest
import time_machine

from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from reports.models import TaskFold
from reports.rebuild import rollups_rebuild, rollups_recompute
from sla.models import SLARecord
from sla.repair import Proposal, RepairKind, RepairScope
from sla.repair_apply import sla_repair_create, sla_repair_run
from tests.sla.conftest import MONDAY_10

from .history import stored_rollups

pytestmark = pytest.mark.django_db

URL = "/api/workflow/reports/"
WINDOW = f"from={MONDAY_10.date()}&to={MONDAY_10.date()}"
REPAIRED_AT = MONDAY_10 + timedelta(hours=3)


def _complete(make_task, move, *, after_minutes, **fields):
    """A task created at Monday 10:00, completed ``after_minutes`` later."""
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task(**fields)
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(minutes=after_minutes))
        move(task, "completed")
    return task


def _dispatch():
    report = outbox_dispatch(budget_seconds=30)
    assert not report.handler_failures


def _repair(admin, config, target_minutes):
    """Apply a new target to the config's records, those closed on Monday included."""
    repair = sla_repair_create(
        actor=admin,
        proposal=Proposal(kind=RepairKind.CONFIG_TARGET, config=config.pk, target_minutes=target_minutes),
        scope=RepairScope(closed_from=MONDAY_10 - timedelta(days=1), closed_to=REPAIRED_AT),
        now=REPAIRED_AT,
    )
    return sla_repair_run(repair_id=repair.pk)


def _attainment(api):
    response = api.get(f"{URL}sla-attainment?{WINDOW}")
    assert response.status_code == 200, response.content[:300]
    (row,) = response.json()["rows"]
    return row["met"], row["breached"], row["attainment"]


def _completed(api):
    (row,) = api.get(f"{URL}throughput?{WINDOW}").json()["rows"]
    return row["completed"]


def _equal_to_the_history():
    assert stored_rollups() == rollups_recompute().rollups


def test_a_repair_that_clears_a_breach_moves_the_completion_to_met(
    make_task, move, intake_config, admin_user, admin_api
):
    task = _complete(make_task, move, after_minutes=75)  # 60-minute target: breached at completion
    _dispatch()
    assert _attainment(admin_api) == (0, 1, 0.0)

    repair = _repair(admin_user, intake_config, 90)
    assert (repair.changed, repair.no_longer_breached) == (1, 1)
    assert SLARecord.objects.get(task=task).status == "met"
    _dispatch()

    assert _attainment(admin_api) == (1, 0, 1.0)
    assert _completed(admin_api) == 1
    _equal_to_the_history()


def test_a_repair_that_newly_breaches_moves_the_completion_to_breached(
    make_task, move, intake_config, admin_user, admin_api
):
    _complete(make_task, move, after_minutes=50)  # met: its SLAMet
    _dispatch()
    assert _attainment(admin_api) == (1, 0, 1.0)

    repair = _repair(admin_user, intake_config, 45)
    assert (repair.changed, repair.newly_breached) == (1, 1)
    _dispatch()

    assert _attainment(admin_api) == (0, 1, 0.0)
    _equal_to_the_history()
    # A second repair back to 60 minutes: met again (the latest measurement decides, not the first breach).
    _repair(admin_user, intake_config, 60)
    _dispatch()
    assert _attainment(admin_api) == (1, 0, 1.0)
    _equal_to_the_history()


def test_a_completed_task_without_an_sla_is_throughput_not_attainment(
    make_task, move, intake_config, admin_api
):
    _complete(make_task, move, after_minutes=30)  # intake: an SLA record, met
    _complete(make_task, move, after_minutes=30, task_type="home_visit")  # no config matches: no record
    assert not SLARecord.objects.filter(task__task_type="home_visit").exists()
    _dispatch()

    assert _completed(admin_api) == 2
    assert _attainment(admin_api) == (1, 0, 1.0)
    _equal_to_the_history()


def test_the_rebuild_after_repairs_equals_what_dispatch_kept(
    make_task, move, intake_config, admin_user, admin_api
):
    for minutes in (30, 50, 70, 100):
        _complete(make_task, move, after_minutes=minutes)
    _dispatch()
    assert _attainment(admin_api) == (2, 2, 0.5)
    _repair(admin_user, intake_config, 80)  # 70 no longer breached
    _repair(admin_user, intake_config, 40)  # 50 and 70 breached, 30 still met
    _dispatch()
    assert _attainment(admin_api) == (1, 3, 0.25)
    kept = stored_rollups()
    folds = {fold.task_id: fold.sla for fold in TaskFold.objects.all()}

    # Redelivered (the ledger skips them) and rebuilt from the history: the same rollups and folds.
    OutboxEvent.objects.update(status=OutboxEvent.Status.PENDING, attempts=0)
    _dispatch()
    assert stored_rollups() == kept
    rollups_rebuild()
    assert stored_rollups() == kept
    assert {fold.task_id: fold.sla for fold in TaskFold.objects.all()} == folds
    assert _attainment(admin_api) == (1, 3, 0.25)

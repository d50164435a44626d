"""SLA repair: the dry run says exactly what applying does; old measurements stay readable; events once."""

from collections import Counter
from datetime import timedelta

import pytest
import time_machine

from outbox.models import OutboxEvent
from polaris.audit.models import AuditEntry
from sla.clock import sla_record_schedule
from sla.models import BusinessCalendar, SLARecord, SLARecordVersion, SLARepair
from sla.repair import Proposal, RepairKind, RepairScope, sla_repair_preview
from sla.repair_apply import sla_repair_create, sla_repair_run
from sla.scan import sla_scan
from sla.selectors import sla_history
from tests.sla.conftest import MONDAY_10

NOW = MONDAY_10 + timedelta(minutes=50)


def target(config, minutes):
    return Proposal(kind=RepairKind.CONFIG_TARGET, config=config.pk, target_minutes=minutes)


def events(event_type):
    return Counter(OutboxEvent.objects.filter(event_type=event_type).values_list("aggregate_id", flat=True))


def apply(admin, proposal, scope=None, batch_size=2):
    repair = sla_repair_create(actor=admin, proposal=proposal, scope=scope or RepairScope(), now=NOW)
    return sla_repair_run(repair_id=repair.pk, batch_size=batch_size)


@pytest.fixture
def intake_tasks(make_task, move, intake_config):
    """Four intake tasks on the 60-minute 24x7 config: started 10:00, 10:20, 10:40, and one closed (met)."""
    tasks = {}
    for name, minutes in (("first", 0), ("second", 20), ("third", 40)):
        with time_machine.travel(MONDAY_10 + timedelta(minutes=minutes), tick=False):
            tasks[name] = make_task(title=name)
    with time_machine.travel(MONDAY_10 - timedelta(hours=2), tick=False) as clock:
        tasks["closed"] = make_task(title="closed")
        move(tasks["closed"], "in_progress")
        clock.move_to(MONDAY_10 - timedelta(hours=1, minutes=10))
        move(tasks["closed"], "completed")
    return tasks


def test_the_dry_run_equals_the_application(admin_user, intake_config, intake_tasks):
    proposal = target(intake_config, 45)
    scope = RepairScope(closed_from=MONDAY_10 - timedelta(days=1), closed_to=MONDAY_10)
    preview = sla_repair_preview(actor=admin_user, proposal=proposal, scope=scope, now=NOW)
    # first: due 10:45 < 10:50 now → newly breached; closed one (45 min, completed after 45) → breached too.
    assert vars(preview.totals) == {
        "total": 4,
        "changed": 4,
        "unchanged": 0,
        "newly_breached": 2,
        "no_longer_breached": 0,
    }
    assert not SLARecordVersion.objects.exists()
    assert SLARecord.objects.filter(target_minutes=45).count() == 0

    repair = apply(admin_user, proposal, scope)

    assert repair.state == "done"
    counts = {name: getattr(repair, name) for name in vars(preview.totals)}
    assert counts == vars(preview.totals)
    previewed = {(r["sla_record"], r["new_due_at"], r["new_breached"]) for r in preview.records}
    applied = {(r.pk, r.due_at, r.status == "breached") for r in SLARecord.objects.filter(measurement=2)}
    assert previewed == applied
    assert Counter(events("SLARecalculated").values()) == {1: 4}
    breached = events("SLABreached")
    assert set(breached) == {SLARecord.objects.get(task=intake_tasks[n]).pk for n in ("first", "closed")}
    assert set(breached.values()) == {1}
    closed = SLARecord.objects.get(task=intake_tasks["closed"])
    assert (closed.status, closed.breached_at) == ("breached", closed.started_at + timedelta(minutes=45))
    breach = OutboxEvent.objects.get(event_type="SLABreached", aggregate_id=closed.pk)
    assert breach.payload["detected_by"] == "repair"
    recalculated = OutboxEvent.objects.get(event_type="SLARecalculated", aggregate_id=closed.pk)
    # Its stream: SLAMet (completed on time, 1), then the repair's SLARecalculated (2) and SLABreached (3).
    assert (recalculated.sequence, breach.sequence, closed.version) == (2, 3, 3)
    assert recalculated.payload["previous_target_minutes"] == 60
    assert recalculated.payload["target_minutes"] == 45
    assert recalculated.payload["measurement"] == 2
    assert (recalculated.payload["breached_before"], recalculated.payload["breached"]) == (False, True)
    assert recalculated.payload["repair_id"] == str(repair.pk)
    # The change itself was made, and both it and the repair are in the audit log.
    intake_config.refresh_from_db()
    assert intake_config.target_minutes == 45
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"sla_config.updated", "sla_repair.created", "sla_repair.applied"} <= actions


def test_old_measurements_stay_readable(admin_user, intake_config, intake_tasks):
    record = SLARecord.objects.get(task=intake_tasks["second"])
    promised = record.due_at
    apply(admin_user, target(intake_config, 90))
    apply(admin_user, target(intake_config, 30))

    record.refresh_from_db()
    assert record.measurement == 3
    _, versions = sla_history(user=admin_user, task_id=intake_tasks["second"].pk)
    assert [(v["number"], v["target_minutes"], v["current"]) for v in versions] == [
        (1, 60, False),
        (2, 90, False),
        (3, 30, True),
    ]
    assert versions[0]["due_at"] == promised
    assert versions[0]["repair"] is None
    assert versions[1]["due_at"] == record.started_at + timedelta(minutes=90)
    assert versions[2]["due_at"] == record.due_at == record.started_at + timedelta(minutes=30)


def test_recompute_under_an_unchanged_policy_changes_nothing(admin_user, intake_config, intake_tasks):
    proposal = Proposal(kind=RepairKind.RECOMPUTE)
    preview = sla_repair_preview(actor=admin_user, proposal=proposal, scope=RepairScope(), now=NOW)
    assert (preview.totals.total, preview.totals.changed, preview.totals.unchanged) == (3, 0, 3)
    repair = apply(admin_user, proposal)
    assert (repair.changed, repair.unchanged) == (0, 3)
    assert not OutboxEvent.objects.filter(event_type="SLARecalculated").exists()


def test_a_longer_target_unbreaches_and_the_scan_breaches_again_once(admin_user, intake_config, intake_tasks):
    sla_scan(now=MONDAY_10 + timedelta(minutes=65))  # first breached (due 11:00)
    first = SLARecord.objects.get(task=intake_tasks["first"])
    assert first.status == "breached"

    repair = apply(admin_user, target(intake_config, 120))

    assert repair.no_longer_breached == 1
    first.refresh_from_db()
    assert (first.status, first.breached_at) == ("running", None)
    assert first.due_at == first.started_at + timedelta(minutes=120)
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=100)).breached == 0
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=121)).breached == 1
    # One breach per measurement: the one of the 60-minute promise, the one of the corrected 120.
    assert events("SLABreached")[first.pk] == 2


def test_a_calendar_change_measures_as_the_clock_would(admin_user, make_config, make_task, office_calendar):
    config = make_config(name="visits", task_type="home-visit", target_minutes=600, calendar=office_calendar)
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(task_type="home-visit")
    hours = {"mon": [["08:00", "12:00"]], "tue": [["10:00", "24:00"]], "fri": [["09:00", "17:00"]]}
    proposal = Proposal(kind=RepairKind.CALENDAR_HOURS, calendar=office_calendar.pk, hours=hours)
    preview = sla_repair_preview(actor=admin_user, proposal=proposal, scope=RepairScope(), now=NOW)

    expected = SLARecord.objects.get(task=task)
    expected.calendar_snapshot = {**office_calendar.definition(), "working_hours": hours}
    sla_record_schedule(expected)  # the clock's own arithmetic, record by record
    assert [r["new_due_at"] for r in preview.records] == [expected.due_at]

    apply(admin_user, proposal)
    record = SLARecord.objects.get(task=task)
    assert (record.due_at, record.next_warning_at) == (expected.due_at, expected.next_warning_at)
    assert record.calendar_snapshot["working_hours"] == hours
    assert BusinessCalendar.objects.get(pk=office_calendar.pk).working_hours == hours
    assert config.records.count() == 1


def test_a_retried_application_repeats_nothing(admin_user, intake_config, intake_tasks, monkeypatch):
    from sla import repair_apply

    proposal = target(intake_config, 45)
    preview = sla_repair_preview(actor=admin_user, proposal=proposal, scope=RepairScope(), now=NOW)
    repair = sla_repair_create(actor=admin_user, proposal=proposal, scope=RepairScope(), now=NOW)
    real, calls = repair_apply._apply_batch, []

    def crash_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(repair_apply, "_apply_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        sla_repair_run(repair_id=repair.pk, batch_size=1)
    assert SLARepair.objects.get(pk=repair.pk).processed == 1  # the first batch committed

    monkeypatch.setattr(repair_apply, "_apply_batch", real)
    done = sla_repair_run(repair_id=repair.pk, batch_size=1)
    again = sla_repair_run(repair_id=repair.pk, batch_size=1)

    assert done.state == again.state == "done"
    assert (done.changed, done.newly_breached, done.processed) == (preview.totals.changed, 1, 3)
    assert Counter(events("SLARecalculated").values()) == {1: 3}
    assert Counter(events("SLABreached").values()) == {1: 1}
    assert (
        Counter(SLARecordVersion.objects.filter(repair=repair).values_list("record", flat=True)).most_common(
            1
        )[0][1]
        == 1
    )


def test_a_scan_after_the_repair_does_not_breach_again(admin_user, intake_config, intake_tasks):
    apply(admin_user, target(intake_config, 45))
    assert sla_scan(now=NOW + timedelta(hours=5)).breached == 2  # second and third, later; first once only
    assert set(events("SLABreached").values()) == {1}


def test_applying_is_sent_to_celery_after_commit_and_runs_there(
    admin_user, intake_config, intake_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from celery import current_app

    from sla.tasks import sla_repair_apply_task

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True):
        repair = sla_repair_create(
            actor=admin_user, proposal=target(intake_config, 45), scope=RepairScope(), now=NOW
        )
    assert sent == [("sla.sla_repair_apply", [str(repair.pk)])]
    assert SLARepair.objects.get(pk=repair.pk).state == "pending"

    sla_repair_apply_task.apply(args=[str(repair.pk)])  # the task body, run here

    assert SLARepair.objects.get(pk=repair.pk).state == "done"


def test_a_failed_repair_runs_again_from_its_cursor(admin_user, intake_config, intake_tasks):
    from sla.repair_apply import sla_repair_fail

    repair = sla_repair_create(
        actor=admin_user, proposal=target(intake_config, 45), scope=RepairScope(), now=NOW
    )
    sla_repair_fail(repair_id=repair.pk, error="RuntimeError: worker lost")
    failed = SLARepair.objects.get(pk=repair.pk)
    assert (failed.state, failed.error) == ("failed", "RuntimeError: worker lost")

    done = sla_repair_run(repair_id=repair.pk)

    assert (done.state, done.error, done.changed) == ("done", "", 3)

"""Effectively once: a repair racing scans breaches each record once; a trigger on the repair's breach
escalates once even when the event is delivered again."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from automation.models import Alert
from automation.services import trigger_create
from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from sla.models import SLARecord
from sla.repair import Proposal, RepairKind, RepairScope
from sla.repair_apply import sla_repair_create, sla_repair_run
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10

RECORDS = 60


def in_threads(*calls):
    barrier = threading.Barrier(len(calls))
    errors = []

    def run(call):
        try:
            barrier.wait(timeout=10)
            call()
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_a_repair_racing_scans_breaches_each_record_once(admin_user, make_task, make_config):
    config = make_config(name="visits", task_type="home-visit", target_minutes=60, warning_percentages=[50])
    with time_machine.travel(MONDAY_10, tick=False):
        for number in range(RECORDS):
            make_task(title=f"visit {number}", task_type="home-visit")
    # Judged at 10:45 the 30-minute target breaches every record; a scan at 11:01 breaches them by the
    # old 60 minutes as well. Whichever locks a record first breaches it; the other does not again.
    proposal = Proposal(kind=RepairKind.CONFIG_TARGET, config=config.pk, target_minutes=30)
    repair = sla_repair_create(
        actor=admin_user, proposal=proposal, scope=RepairScope(), now=MONDAY_10 + timedelta(minutes=45)
    )
    scan_at = MONDAY_10 + timedelta(minutes=61)

    in_threads(
        lambda: sla_repair_run(repair_id=repair.pk, batch_size=5),
        lambda: sla_scan(now=scan_at, batch_size=5),
        lambda: sla_scan(now=scan_at, batch_size=5),
    )

    assert SLARecord.objects.filter(status="breached").count() == RECORDS
    breaches = Counter(
        OutboxEvent.objects.filter(event_type="SLABreached").values_list("aggregate_id", flat=True)
    )
    assert len(breaches) == RECORDS
    assert set(breaches.values()) == {1}
    recalculated = Counter(
        OutboxEvent.objects.filter(event_type="SLARecalculated").values_list("aggregate_id", flat=True)
    )
    assert (len(recalculated), set(recalculated.values())) == (RECORDS, {1})
    assert set(SLARecord.objects.values_list("target_minutes", "measurement")) == {(30, 2)}
    # Each stream stays gap-free whoever came first.
    for record in SLARecord.objects.all():
        sequences = sorted(
            OutboxEvent.objects.filter(aggregate_id=record.pk).values_list("sequence", flat=True)
        )
        assert sequences == list(range(1, record.version + 1))


def test_a_trigger_on_the_repairs_breach_fires_once_under_redelivery(admin_user, make_task, intake_config):
    trigger_create(
        name="Escalate repaired breaches",
        event_type="SLABreached",
        predicate='payload["detected_by"] == "repair"',
        actions=[{"type": "emit_alert", "params": {"message": "Breached by a repair: $title"}}],
    )
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(title="Cleo's intake")
    proposal = Proposal(kind=RepairKind.CONFIG_TARGET, config=intake_config.pk, target_minutes=30)
    repair = sla_repair_create(
        actor=admin_user, proposal=proposal, scope=RepairScope(), now=MONDAY_10 + timedelta(minutes=45)
    )
    sla_repair_run(repair_id=repair.pk)
    sla_repair_run(repair_id=repair.pk)  # a retry of the whole task: nothing more

    outbox_dispatch(budget_seconds=10, max_batches=20)
    breach = OutboxEvent.objects.get(event_type="SLABreached")
    # Redelivery, e.g. a worker that died after handling but before settling the event.
    OutboxEvent.objects.filter(pk=breach.pk).update(
        status=OutboxEvent.Status.PENDING, next_attempt_at=breach.occurred_at
    )
    outbox_dispatch(budget_seconds=10, max_batches=20)

    (alert,) = Alert.objects.all()
    assert alert.event_id == breach.pk
    assert alert.message == "Breached by a repair: Cleo's intake"
    assert breach.payload["task_id"] == str(task.pk)

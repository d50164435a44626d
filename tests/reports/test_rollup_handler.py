"""The rollup handler on real dispatch: what a task's life adds, and redelivery adding nothing."""

import io
import uuid
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from django.db import transaction

from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from reports.fold import HOUR_MS, Metric
from reports.models import Rollup, TaskFold
from reports.rebuild import rollups_recompute
from reports.rollups import FoldRaced, epoch_ms, rollups_apply

from .history import breach_event, met_event, recalculated_event, stored_rollups, task_event

T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def _life(agency_id, *, task_id=None, breach=False, met=True):
    """Created, in progress after 2 h, completed after 2 days; breached after a day, or else met (at the
    completion) unless ``met=False`` (no SLA outcome: no SLA record, or its outcome still in flight)."""
    task_id = task_id or uuid.uuid4()
    events = [
        task_event(
            task_id=task_id, event_type="TaskCreated", sequence=1, at=T0, agency_id=agency_id, new_state="new"
        ),
        task_event(
            task_id=task_id,
            event_type="TaskStateChanged",
            sequence=2,
            at=T0 + timedelta(hours=2),
            agency_id=agency_id,
            old_state="new",
            new_state="in_progress",
        ),
        task_event(
            task_id=task_id,
            event_type="TaskStateChanged",
            sequence=3,
            at=T0 + timedelta(days=2),
            agency_id=agency_id,
            old_state="in_progress",
            new_state="completed",
        ),
    ]
    if breach:
        events.append(breach_event(task_id=task_id, at=T0 + timedelta(days=1), agency_id=agency_id))
    elif met:
        events.append(met_event(task_id=task_id, at=T0 + timedelta(days=2), agency_id=agency_id))
    return OutboxEvent.objects.bulk_create(events)


def _value(metric, at, state=""):
    hour = epoch_ms(at) // HOUR_MS * HOUR_MS
    return sum(v for k, v in stored_rollups().items() if k[0] == metric and k[1] == hour and k[5] == state)


def test_a_task_life_becomes_rollup_rows_through_dispatch(agency):
    _life(agency.pk, breach=True)
    report = outbox_dispatch(budget_seconds=30)
    assert report.dispatched == 4
    assert not report.handler_failures

    assert _value(Metric.CREATED, T0) == 1
    assert _value(Metric.COMPLETED, T0 + timedelta(days=2)) == 1
    assert _value(Metric.SLA_BREACHED, T0 + timedelta(days=2)) == 1
    assert _value(Metric.SLA_MET, T0 + timedelta(days=2)) == 0
    assert _value(Metric.STATE_MS, T0 + timedelta(hours=2), "new") == 2 * HOUR_MS
    assert _value(Metric.STATE_EXITS, T0 + timedelta(days=2), "in_progress") == 1
    fold = TaskFold.objects.get()
    assert [step[2] for step in fold.steps] == ["new", "in_progress", "completed"]
    breach = OutboxEvent.objects.get(event_type="SLABreached")
    assert fold.sla == {str(breach.aggregate_id): [1, True]}
    assert not fold.breached
    assert stored_rollups() == rollups_recompute().rollups


def test_redelivered_events_change_nothing(agency):
    events = _life(agency.pk)
    outbox_dispatch(budget_seconds=30)
    before = stored_rollups()
    # The ledger skips them; and the handler itself, called again, folds nothing new.
    OutboxEvent.objects.update(status=OutboxEvent.Status.PENDING, attempts=0)
    outbox_dispatch(budget_seconds=30)
    rollups_apply(list(OutboxEvent.objects.filter(pk__in=[e.pk for e in events])))
    assert stored_rollups() == before
    assert sum(v for k, v in before.items() if k[0] == Metric.SLA_MET) == 1


def test_a_late_breach_files_the_completion_as_breached(agency):
    task_id = uuid.uuid4()
    _life(agency.pk, task_id=task_id, met=False)
    outbox_dispatch(budget_seconds=30)
    assert _value(Metric.COMPLETED, T0 + timedelta(days=2)) == 1
    assert _value(Metric.SLA_MET, T0 + timedelta(days=2)) == 0  # no outcome yet: not in attainment
    assert _value(Metric.SLA_BREACHED, T0 + timedelta(days=2)) == 0
    OutboxEvent.objects.bulk_create(
        [breach_event(task_id=task_id, at=T0 + timedelta(days=3), agency_id=agency.pk)]
    )
    outbox_dispatch(budget_seconds=30)
    assert _value(Metric.SLA_MET, T0 + timedelta(days=2)) == 0
    assert _value(Metric.SLA_BREACHED, T0 + timedelta(days=2)) == 1
    assert stored_rollups() == rollups_recompute().rollups


def test_the_rebuild_command_recomputes_what_dispatch_kept(agency):
    from django.core.management import call_command

    _life(agency.pk, breach=True)
    outbox_dispatch(budget_seconds=30)
    kept = stored_rollups()
    Rollup.objects.all().update(value=0)  # lose the counters
    out = io.StringIO()
    call_command("reports_rebuild", stdout=out)
    assert "from 4 events of 1 tasks" in out.getvalue()
    assert stored_rollups() == kept


def test_a_new_fold_inserted_meanwhile_makes_the_batch_raise_and_write_nothing(agency):
    events = _life(agency.pk)
    rollups_apply(events[:1])
    before = stored_rollups()
    # As if another dispatcher had inserted this task's fold after this batch read none.
    with (
        patch("reports.rollups.folds_lock_sql", return_value="SELECT 1 WHERE %s::uuid[] IS NULL"),
        pytest.raises(FoldRaced),
        transaction.atomic(),
    ):
        rollups_apply(events[1:2])
    assert stored_rollups() == before
    rollups_apply(events[1:])  # redone: it reads the fold this time
    assert stored_rollups() == rollups_recompute().rollups


def test_sla_outcomes_out_of_order_and_redelivered_give_the_same_rollups(agency):
    """A breach, then a repair clearing it: in order, reversed, or with replays, one answer (met)."""
    task_id, record_id = uuid.uuid4(), uuid.uuid4()
    life = _life(agency.pk, task_id=task_id, met=False)
    outcomes = OutboxEvent.objects.bulk_create(
        [
            breach_event(
                task_id=task_id, at=T0 + timedelta(days=1), agency_id=agency.pk, record_id=record_id
            ),
            recalculated_event(
                task_id=task_id,
                at=T0 + timedelta(days=3),
                agency_id=agency.pk,
                record_id=record_id,
                sequence=2,
                breached=False,
            ),
        ]
    )
    answers = []
    for order in (life + outcomes, outcomes[::-1] + life[::-1], [*outcomes[1:], *life, *outcomes, *life]):
        TaskFold.objects.all().delete()
        Rollup.objects.all().delete()
        for event in order:
            rollups_apply([event])
        answers.append(stored_rollups())
        assert _value(Metric.SLA_MET, T0 + timedelta(days=2)) == 1
        assert _value(Metric.SLA_BREACHED, T0 + timedelta(days=2)) == 0
    assert answers[0] == answers[1] == answers[2] == rollups_recompute().rollups

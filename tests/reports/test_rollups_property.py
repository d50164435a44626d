"""The property: after any history, delivered in any order, in any batches, with replays and late events,
the rollups the handler kept equal a recomputation from the event history (``reports.rebuild``).

Hypothesis draws the histories (bounded: a few tasks, a few events each, 40 examples, well under 30 s).
"""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbox.models import OutboxEvent
from reports.fold import Metric
from reports.models import Rollup, TaskFold
from reports.rebuild import rollups_recompute
from reports.rollups import rollups_apply

from .history import sla_event, stored_rollups, task_event

START = datetime(2026, 3, 27, tzinfo=UTC)
AGENCIES = [uuid.UUID(int=1), uuid.UUID(int=2)]
STATES = ["in_progress", "blocked", "in_progress", "completed", "cancelled"]

SLA_TYPES = ("SLABreached", "SLAMet", "SLARecalculated", "OldSLABreached")
step = st.tuples(
    st.sampled_from(["TaskStateChanged", "TaskStateChanged", "TaskUpdated", *SLA_TYPES]),
    st.integers(min_value=0, max_value=3 * 24 * 60),  # minutes after the previous event
    st.sampled_from(STATES),
    st.sampled_from(["housing", "health", ""]),
    st.integers(min_value=0, max_value=1),  # which of the task's two SLA records (SLA events)
    st.booleans(),  # an SLARecalculated's ``breached``
)
task = st.tuples(
    st.integers(min_value=0, max_value=40 * 24 * 60),  # created, minutes after START
    st.sampled_from(AGENCIES),
    st.booleans(),  # whether its TaskCreated is in the history (False: a fold without a creation)
    st.lists(step, max_size=5),
)
delivery = st.tuples(
    st.lists(task, min_size=1, max_size=5),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=6),  # batch size
    st.floats(min_value=0, max_value=0.5),  # share of events delivered again later
)


def _history(tasks) -> list[OutboxEvent]:
    events = []
    for created_minutes, agency_id, has_creation, steps in tasks:
        task_id = uuid.uuid4()
        at = START + timedelta(minutes=created_minutes)
        area = "housing"
        if has_creation:
            events.append(
                task_event(
                    task_id=task_id,
                    event_type="TaskCreated",
                    sequence=1,
                    at=at,
                    agency_id=agency_id,
                    new_state="new",
                    service_area=area,
                )
            )
        sequence, state = 1, "new"
        records = [uuid.uuid4(), uuid.uuid4()]
        record_sequences = [0, 0]
        for event_type, minutes, new_state, new_area, record, breached in steps:
            at += timedelta(minutes=minutes)
            if event_type in SLA_TYPES:
                # An SLA record's stream: its own sequence; an "old" breach names no record.
                record_sequences[record] += 1
                events.append(
                    sla_event(
                        event_type="SLABreached" if event_type == "OldSLABreached" else event_type,
                        task_id=task_id,
                        at=at,
                        agency_id=agency_id,
                        service_area=area,
                        record_id=records[record],
                        sequence=record_sequences[record],
                        breached=breached if event_type == "SLARecalculated" else None,
                        named=event_type != "OldSLABreached",
                    )
                )
                if event_type == "OldSLABreached":
                    records[record] = uuid.uuid4()  # (its stream position is taken: a fresh record after)
                    record_sequences[record] = 0
                continue
            sequence += 1
            if event_type == "TaskUpdated":
                area = new_area
                events.append(
                    task_event(
                        task_id=task_id,
                        event_type=event_type,
                        sequence=sequence,
                        at=at,
                        agency_id=agency_id,
                        service_area=area,
                    )
                )
            else:
                events.append(
                    task_event(
                        task_id=task_id,
                        event_type=event_type,
                        sequence=sequence,
                        at=at,
                        agency_id=agency_id,
                        old_state=state,
                        new_state=new_state,
                        service_area=area,
                    )
                )
                state = new_state
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=delivery)
def test_rollups_equal_a_recomputation_after_any_delivery(db, drawn):
    tasks, rng, batch_size, replay_share = drawn
    OutboxEvent.objects.all().delete()
    TaskFold.objects.all().delete()
    Rollup.objects.all().delete()
    events = OutboxEvent.objects.bulk_create(_history(tasks))

    # Any order (late events: an older occurred_at after newer ones), any batches, some delivered twice.
    order = list(events)
    rng.shuffle(order)
    replays = [event for event in events if rng.random() < replay_share]
    order += replays
    rng.shuffle(order)
    for start in range(0, len(order), batch_size):
        rollups_apply(order[start : start + batch_size])

    recomputed = rollups_recompute()
    assert stored_rollups() == recomputed.rollups
    # And a few figures checked without the fold: one creation per TaskCreated, one completion per step.
    by_metric = Counter()
    for key, value in recomputed.rollups.items():
        by_metric[key[0]] += value
    assert by_metric[Metric.CREATED] == sum(1 for e in events if e.event_type == "TaskCreated")
    completions = {
        (e.aggregate_id, e.sequence)
        for e in events
        if e.payload.get("new_state") == "completed" and e.event_type == "TaskStateChanged"
    }
    assert by_metric[Metric.COMPLETED] == len(completions)
    # Attainment counts exactly the tasks that ended completed and had an SLA outcome event.
    last_step = {}
    for e in sorted(events, key=lambda e: e.sequence):
        if e.event_type in ("TaskCreated", "TaskStateChanged"):
            last_step[e.aggregate_id] = e.payload["new_state"]
    with_outcome = {uuid.UUID(e.payload["task_id"]) for e in events if e.event_type in SLA_TYPES}
    attained = {task for task, state in last_step.items() if state == "completed" and task in with_outcome}
    assert by_metric[Metric.SLA_MET] + by_metric[Metric.SLA_BREACHED] == len(attained)


def test_the_property_can_fail(db):
    """A rollup row changed behind the handler's back is seen (the comparison is not vacuous)."""
    events = OutboxEvent.objects.bulk_create(
        _history([(0, AGENCIES[0], True, [("TaskStateChanged", 60, "completed", "", 0, False)])])
    )
    rollups_apply(events)
    assert stored_rollups() == rollups_recompute().rollups
    Rollup.objects.filter(metric=Metric.CREATED).update(value=2)
    assert stored_rollups() != rollups_recompute().rollups

"""The fold on its own (pure, no database): SLA outcomes by record and sequence, in any order."""

from itertools import permutations

from reports.fold import HOUR_MS, Fold, Metric, contributions, fold_event

TASK, RECORD, OTHER = "00000000-0000-0000-0000-00000000000a", "rec-1", "rec-2"
T0 = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS
FACTS = {"agency_id": None, "service_area": "housing", "task_type": "intake"}


def _task(sequence, state, hours):
    event_type = "TaskCreated" if sequence == 1 else "TaskStateChanged"
    return (event_type, sequence, T0 + hours * HOUR_MS, {**FACTS, "new_state": state})


def _sla(event_type, sequence, record=RECORD, **extra):
    payload = {**FACTS, "task_id": TASK, **extra}
    if record is not None:
        payload["sla_record_id"] = record
    return (event_type, sequence, T0 + 5 * HOUR_MS, payload)


LIFE = [_task(1, "new", 0), _task(2, "in_progress", 1), _task(3, "completed", 3)]


def _fold(events):
    fold = Fold(TASK)
    for event_type, sequence, at_ms, payload in events:
        fold_event(fold, event_type=event_type, sequence=sequence, at_ms=at_ms, payload=payload)
    return fold


def _attainment(events):
    rows = contributions(_fold(events))
    met = sum(v for k, v in rows.items() if k[0] == Metric.SLA_MET)
    breached = sum(v for k, v in rows.items() if k[0] == Metric.SLA_BREACHED)
    return met, breached


def test_without_an_sla_outcome_a_completion_is_not_in_attainment():
    assert _attainment(LIFE) == (0, 0)
    assert sum(v for k, v in contributions(_fold(LIFE)).items() if k[0] == Metric.COMPLETED) == 1


def test_the_latest_outcome_of_a_record_decides_in_any_order():
    cases = [
        ([_sla("SLAMet", 1)], (1, 0)),
        ([_sla("SLABreached", 1)], (0, 1)),
        ([_sla("SLABreached", 1), _sla("SLARecalculated", 2, breached=False)], (1, 0)),
        ([_sla("SLAMet", 1), _sla("SLARecalculated", 2, breached=True), _sla("SLABreached", 3)], (0, 1)),
        (
            [
                _sla("SLABreached", 1),
                _sla("SLARecalculated", 2, breached=False),
                _sla("SLARecalculated", 3, breached=True),
                _sla("SLABreached", 4),
                _sla("SLARecalculated", 5, breached=False),
            ],
            (1, 0),
        ),
        # Two records: the task is breached when any record's current outcome is.
        ([_sla("SLAMet", 1), _sla("SLABreached", 1, record=OTHER)], (0, 1)),
    ]
    for outcomes, expected in cases:
        events = LIFE + outcomes
        first = _fold(events)
        # The set of events decides, not their order.
        assert all(_fold(list(order)) == first for order in permutations(events)), outcomes
        assert _attainment(events) == expected, outcomes
        assert _fold(events + events) == _fold(events)  # folding again changes nothing


def test_older_payloads_fold_as_before():
    # An SLABreached naming no record: a sticky breach of the task (as before the outcomes were kept).
    old = _sla("SLABreached", 1, record=None)
    assert _attainment([*LIFE, old, _sla("SLARecalculated", 2, breached=False)]) == (0, 1)
    # An SLARecalculated without a boolean ``breached`` is not folded.
    fold = _fold([*LIFE, _sla("SLABreached", 1), _sla("SLARecalculated", 2, breached="no")])
    assert fold.sla == {RECORD: [1, True]}
    assert _attainment([*LIFE, _sla("SLARecalculated", 2)]) == (0, 0)


def test_a_fold_known_only_from_an_sla_event_takes_its_facts():
    fold = _fold([_sla("SLAMet", 1)])
    assert (fold.service_area, fold.task_type, fold.sla) == ("housing", "intake", {RECORD: [1, False]})
    assert contributions(fold) == {}

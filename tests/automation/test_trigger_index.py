"""The engine's trigger index: skipping a trigger by its guard never changes an outcome."""

from hypothesis import given, settings
from hypothesis import strategies as st

from automation.models import Trigger
from automation.predicates import PredicateError, predicate_compile
from automation.ruleset import ruleset_build

VALUES = ["intake", "assessment", "completed", "blocked", "", None, 3, ["intake"]]
NAMES = ("task_type", "new_state", "priority")
PREDICATES = [
    'task_type == "intake"',
    'task_type == "intake" and new_state == "completed"',
    'task_type in ("intake", "assessment") and priority != "low"',
    'new_state in ["blocked"] or task_type == "intake"',  # an or: never guarded
    'priority == "completed" and payload["x"] > 1',  # errors unless skipped by the guard
    'payload["x"] > 1 and task_type == "intake"',  # guard only from the first clause: none here
    '(task_type == "intake") and 1 / 0',
    "task_type == 3",  # not a string: never guarded
    "",
    'not task_type == "intake"',
]


def outcome(text, names):
    try:
        return bool(predicate_compile(text).evaluate(names))
    except PredicateError:
        return "error"


@settings(max_examples=300, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(PREDICATES), min_size=1, max_size=12),
    values=st.tuples(*[st.sampled_from(VALUES) for _ in NAMES]),
)
def test_skipped_triggers_are_exactly_ones_that_are_false_without_error(chosen, values):
    triggers = [
        Trigger(pk=i + 1, name=f"t{i}", event_type="X", predicate=text) for i, text in enumerate(chosen)
    ]
    ruleset = ruleset_build(triggers, 0.0)
    names = {**dict(zip(NAMES, values, strict=True)), "payload": {}}
    candidates = ruleset.candidates(names)
    assert candidates == sorted(set(candidates))  # position order, each once
    for position, text in enumerate(chosen):
        if position not in candidates:
            assert outcome(text, names) is False, (text, names)


def test_guards_come_from_the_first_clause_only():
    assert predicate_compile('task_type == "a" and depth > 1').guard == (
        "task_type",
        frozenset({"a"}),
    )
    assert predicate_compile('new_state in ("a", "b")').guard == ("new_state", frozenset({"a", "b"}))
    assert predicate_compile('depth > 1 and task_type == "a"').guard is None
    assert predicate_compile('task_type == "a" or depth > 1').guard is None
    assert predicate_compile('payload["task_type"] == "a"').guard is None
    assert predicate_compile("task_type == 1").guard is None

"""Blueprint rules without the database: fields, bounds, unknown keys, and the DAG (a cycle is named)."""

import pytest

from careplans.blueprints import (
    MAX_BLUEPRINTS,
    DependencyCycle,
    blueprints_clean,
    dependency_cycle,
)
from polaris.errors import ValidationFailed
from tests.careplans.conftest import DIAMOND


def test_a_diamond_is_a_dag_and_defaults_are_filled():
    cleaned = blueprints_clean(DIAMOND)
    assert [b["key"] for b in cleaned] == ["intake", "assessment", "housing", "benefits", "review"]
    assert cleaned[0]["depends_on"] == []
    assert cleaned[0]["on_predecessor_cancelled"] == "ready"
    assert cleaned[0]["priority"] == "normal"
    assert cleaned[0]["checklist"] == []
    assert cleaned[2]["checklist"] == [{"text": "Proof of address", "required": True}]
    assert cleaned[4]["depends_on"] == ["benefits", "housing"]


def test_a_cycle_is_refused_naming_its_keys():
    blueprints = [
        {"key": "a", "title": "A", "task_type": "t"},
        {"key": "b", "title": "B", "task_type": "t", "depends_on": ["a", "d"]},
        {"key": "c", "title": "C", "task_type": "t", "depends_on": ["b"]},
        {"key": "d", "title": "D", "task_type": "t", "depends_on": ["c"]},
    ]
    with pytest.raises(DependencyCycle) as caught:
        blueprints_clean(blueprints)
    assert caught.value.error_code == "DEPENDENCY_CYCLE"
    assert caught.value.status_code == 400
    cycle = caught.value.details["cycle"]
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"b", "c", "d"}


def test_a_task_depending_on_itself_is_a_cycle():
    with pytest.raises(DependencyCycle) as caught:
        blueprints_clean([{"key": "a", "title": "A", "task_type": "t", "depends_on": ["a"]}])
    assert caught.value.details["cycle"] == ["a", "a"]


def test_the_cycle_finder_sees_none_in_a_dag_and_one_in_a_loop():
    assert dependency_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert dependency_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) == ["a", "c", "b", "a"]


@pytest.mark.parametrize(
    ("blueprints", "problem"),
    [
        ([{"key": "a", "title": "A", "task_type": "t", "depends_on": ["nope"]}], "unknown key(s) nope"),
        ([{"key": "a", "title": "A", "task_type": "t"}] * 2, "Duplicate key(s): a"),
        ([{"key": "A!", "title": "A", "task_type": "t"}], "key"),
        ([{"key": "a", "title": "", "task_type": "t"}], "title"),
        ([{"key": "a", "title": "A", "task_type": "t", "colour": "red"}], "Unknown field(s): colour"),
        ([{"key": "a", "title": "A", "task_type": "t", "due_in_business_hours": 0}], "due_in_business_hours"),
        ([{"key": "a", "title": "A", "task_type": "t", "priority": "meh"}], "priority"),
        ([{"key": "a", "title": "A", "task_type": "t", "on_predecessor_cancelled": "x"}], "on_predecessor"),
        ([{"key": "a", "title": "A", "task_type": "t", "checklist": [{"text": ""}]}], "checklist"),
        ([], "non-empty"),
        ("nope", "non-empty"),
    ],
)
def test_bad_blueprints_are_refused_by_position(blueprints, problem):
    with pytest.raises(ValidationFailed) as caught:
        blueprints_clean(blueprints)
    assert problem in str(caught.value.details)


def test_the_number_of_blueprints_is_bounded():
    many = [{"key": f"k{n}", "title": "T", "task_type": "t"} for n in range(MAX_BLUEPRINTS + 1)]
    with pytest.raises(ValidationFailed):
        blueprints_clean(many)
    assert len(blueprints_clean(many[:MAX_BLUEPRINTS])) == MAX_BLUEPRINTS

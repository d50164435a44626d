"""The predicate language: what it evaluates, what it refuses at save, and its bounds at evaluation."""

import ast

import pytest

from automation import predicates
from automation.predicates import PredicateError, predicate_compile
from automation.services import trigger_create
from polaris.errors import ValidationFailed

NAMES = {
    "event_type": "TaskStateChanged",
    "task_type": "intake",
    "old_state": "in_progress",
    "new_state": "completed",
    "priority": "high",
    "service_area": "housing",
    "depth": 0,
    "actor_role": "agency",
    "payload": {"title": "Intake for Cleo", "tags": ["urgent", "housing"], "count": 3, "nested": {"a": 1}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('task_type == "intake" and new_state == "completed"', True),
        ('task_type == "intake" and new_state == "blocked"', False),
        ('priority in ("high", "urgent")', True),
        ('priority not in ["low", "normal"]', True),
        ('"urgent" in payload["tags"]', True),
        ('"x" in payload["missing"]', False),
        ('payload["missing"] is None', True),
        ('payload["nested"]["a"] == 1 and payload["tags"][0] == "urgent"', True),
        ("not depth > 2", True),
        ('len(payload["tags"]) >= 2', True),
        ('startswith(lower(payload["title"]), "intake")', True),
        ('endswith(upper(service_area), "ING")', True),
        ('present(payload["title"]) and not present(payload["missing"])', True),
        ('payload["count"] * 2 + 1 == 7 and 0 < payload["count"] <= 3', True),
        ('actor_role == "agency" or actor_role == "admin"', True),
        ("", True),
        ("   ", True),
    ],
)
def test_evaluates_the_language(text, expected):
    assert predicate_compile(text).evaluate(NAMES) is expected


ATTACKS = [
    '__import__("os").system("id")',
    "().__class__.__bases__[0].__subclasses__()",
    "payload.__class__",
    "payload.get",
    'payload["__class__"]',
    "__builtins__",
    "_private",
    "import os",
    'exec("1")',
    'eval("1")',
    'getattr(payload, "x")',
    'open("/etc/passwd")',
    "(lambda: 1)()",
    "[x for x in payload]",
    "{x for x in payload}",
    "{k: v for k, v in payload}",
    "any(x for x in payload)",
    "9 ** 9 ** 9",
    "2 << 10000",
    '"a" * 10 ** 12',
    "99999999999999999999999999999999",
    "1e400 > 0",
    'f"{payload}"',
    "(x := 1)",
    "payload[0:10]",
    "*payload",
    "1 if depth else 2",
    "{1: 2}",
    "len(*payload)",
    "len(obj=payload)",
    "lower(1, 2)",
    "unknown_name == 1",
    "event_type = 1",
    "depth > (" * 100 + "1" + ")" * 100,
    "not " * 100 + "True",
    "depth + " * 300 + "1",
    "a" * 5000,
    "payload is 1",
    'b"bytes" == 1',
    "1j == 1",
    "...",
    "depth\x00",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_attack_corpus_is_refused_when_compiled(text):
    with pytest.raises(PredicateError):
        predicate_compile(text)


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["payload.__class__", "unknown_name == 1", "depth >"])
def test_invalid_predicates_are_refused_on_save_with_a_clear_message(text):
    with pytest.raises(ValidationFailed) as caught:
        trigger_create(name="bad", event_type="TaskStateChanged", predicate=text)
    [message] = caught.value.details["predicate"]
    assert message.split()[0] in {"Attribute", "Unknown", "Syntax"}


def test_unknown_names_list_the_available_ones():
    with pytest.raises(PredicateError, match="Available names: event_type"):
        predicate_compile("stage == 1")


@pytest.mark.parametrize(
    "text",
    [
        '"a" * 1000 * 1000 == ""',  # repetition is sized before it is built
        'payload["big"] * 3 == ""',
        'payload["big"] + payload["big"] == ""',
        "999999999 * 999999999 * 999999999 * 999999999 > 0",
        "depth / 0 > 1",
        'payload["title"] < 3',
        "lower(depth)",
        "-payload",
    ],
)
def test_runaway_values_are_bounded_at_evaluation(text):
    names = {**NAMES, "payload": {**NAMES["payload"], "big": "x" * 6000}}
    with pytest.raises(PredicateError):
        predicate_compile(text).evaluate(names)


def test_compiled_once_per_text_and_never_reparsed_per_event(monkeypatch):
    predicate_compile.cache_clear()
    calls = []
    real_parse = ast.parse
    monkeypatch.setattr(predicates.ast, "parse", lambda *a, **k: calls.append(a) or real_parse(*a, **k))
    for _ in range(100):
        assert predicate_compile('task_type == "intake"').evaluate(NAMES)
    assert len(calls) == 1


def test_explain_names_the_first_failing_top_level_clause():
    compiled = predicate_compile('task_type == "intake" and new_state == "blocked" and depth == 0')
    explanation = compiled.explain(NAMES)
    assert not explanation.matched
    assert explanation.failed_clause == 'new_state == "blocked"'
    assert [c["result"] for c in explanation.clauses] == [True, False]

    alternatives = predicate_compile('priority == "low" or priority == "normal"').explain(NAMES)
    assert not alternatives.matched
    assert alternatives.failed_clause == "none of the alternatives matched"

    assert predicate_compile('priority == "high"').explain(NAMES).matched


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('payload["tags"] in ("urgent", "housing")', False),  # a list is in no set of strings: no error
        ('payload["tags"] in [["urgent", "housing"], "x"]', True),
        ('payload["count"] in {1, 2, 3}', True),
        ("depth in (-1, 0)", True),
        ('priority not in {"low"}', True),
        ('payload["missing"] == None', True),
        ('"hou" in service_area', True),
        ("payload['count'] >= -3", True),
    ],
)
def test_specialised_comparisons_keep_python_semantics(text, expected):
    assert predicate_compile(text).evaluate(NAMES) is expected


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ('task_type == "intake"', None),  # no payload at all
        ('payload["a"] == 1', {("a",)}),
        ('payload["a"]["b"] == 1 and payload["c"] is None', {("a", "b"), ("c",)}),
        ('payload["a"]["b"] == 1 and len(payload["a"]) > 1', {("a",)}),  # the prefix covers the path
        ('payload["a"][0] == 1', None),  # an index: the list is read whole
        ("len(payload) > 1", None),
        ('payload["a"] == 1 or "b" in payload', None),
    ],
)
def test_payload_paths_are_the_literal_key_chains(text, paths):
    compiled = predicate_compile(text)
    assert compiled.payload_paths == (None if paths is None else frozenset(paths))

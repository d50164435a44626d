"""Introspection of the django-fsm definitions: the one source of truth for what may move where."""

import functools
from dataclasses import dataclass

from django.db import models
from django_fsm import Transition

from .guards import guard_name


@dataclass(frozen=True)
class Edge:
    name: str
    source: str
    target: str
    guards: tuple[str, ...]


def _state_field(model: type[models.Model]):
    return model._meta.get_field("state")


def transitions_of(model: type[models.Model]) -> list[Transition]:
    """Every (source, target) edge of the model's state machine, as django-fsm ``Transition`` objects."""
    return list(_transitions(model))


@functools.cache
def _transitions(model: type[models.Model]) -> tuple[Transition, ...]:
    # Fixed when the class is defined; every task representation asks (its available transitions).
    return tuple(_state_field(model).get_all_transitions(model))


def transition_find(model: type[models.Model], *, source: str, target: str) -> Transition | None:
    """The transition from ``source`` to ``target``, or ``None`` when the pair is not in the graph."""
    for candidate in transitions_of(model):
        if candidate.source == source and candidate.target == target:
            return candidate
    return None


def edges_of(model: type[models.Model]) -> list[Edge]:
    states = [value for value, _ in _state_field(model).choices]
    edges = [
        Edge(t.name, str(t.source), str(t.target), tuple(guard_name(c) for c in t.conditions))
        for t in transitions_of(model)
    ]
    return sorted(edges, key=lambda e: (states.index(e.source), states.index(e.target)))


def machine_describe(model: type[models.Model]) -> dict:
    """States, initial state and transitions (with guard names) of a model's state machine."""
    field = _state_field(model)
    return {
        "states": [value for value, _ in field.choices],
        "initial_state": field.default,
        "transitions": [
            {"name": e.name, "source": e.source, "target": e.target, "guards": list(e.guards)}
            for e in edges_of(model)
        ],
    }

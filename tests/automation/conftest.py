"""Fixtures for automation tests: the built-in triggers, event lookups and a simulated dispatch."""

import importlib

import pytest
from django.apps import apps as django_apps

from automation.engine import automation_handle_event
from outbox.models import OutboxEvent

builtin = importlib.import_module("automation.migrations.0002_builtin_triggers")


@pytest.fixture(autouse=True)
def _start_without_triggers(request):
    """Each database test starts with no triggers, so only the ones it creates (or ``builtin_triggers``)
    run: the data migration's rows exist until some transactional test truncates the tables."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    from automation.models import Trigger
    from automation.ruleset import ruleset_invalidate

    Trigger.objects.all().delete()
    ruleset_invalidate()


@pytest.fixture
def builtin_triggers(_start_without_triggers):
    """The data migration's triggers, installed the way the migration does it."""
    builtin.install(django_apps, None)
    from automation.models import Trigger

    return {
        t.event_type: t
        for t in Trigger.objects.filter(name__in=[f["name"] for f in builtin.BUILTIN_TRIGGERS])
    }


def latest_event(aggregate) -> OutboxEvent:
    return OutboxEvent.objects.filter(aggregate_id=aggregate.pk).order_by("-sequence").first()


def dispatch_all(limit: int = 50) -> list[OutboxEvent]:
    """Hand every event not yet seen to the automation handler, oldest first, until none are left
    (an in-process stand-in for the dispatcher in unit tests; bounded by ``limit`` events)."""
    seen: set = set()
    handled: list[OutboxEvent] = []
    while len(handled) < limit:
        batch = list(OutboxEvent.objects.exclude(pk__in=seen).order_by("occurred_at", "sequence")[:10])
        if not batch:
            return handled
        for event in batch:
            seen.add(event.pk)
            automation_handle_event(event)
            handled.append(event)
    raise AssertionError(f"more than {limit} events: automation did not settle")

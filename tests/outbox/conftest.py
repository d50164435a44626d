"""Dispatch test fixtures: an isolated handler registry, probe events, the effect table."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from outbox import registry
from outbox.models import OutboxEvent
from tests.support import effect_probe as effects


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Only the handlers a test registers run (other apps' handlers are not under test here)."""
    monkeypatch.setattr(registry, "_handlers", {})


@pytest.fixture
def make_event(db):
    """Insert one probe event (no kick: the test decides when to dispatch)."""

    def make(*, aggregate_id=None, sequence=1, event_type=effects.PROBE_EVENT_TYPE, **fields):
        return OutboxEvent.objects.create(
            event_type=event_type,
            aggregate_type="probe",
            aggregate_id=aggregate_id or uuid.uuid4(),
            sequence=sequence,
            correlation_id="test",
            **fields,
        )

    return make


def probe_events_bulk(*, count: int, aggregates: int | None = None) -> list[OutboxEvent]:
    """``count`` pending events over ``aggregates`` aggregates (default: one each), in stream order."""
    aggregates = aggregates or count
    ids = [uuid.uuid4() for _ in range(aggregates)]
    now = timezone.now()
    rows = [
        OutboxEvent(
            event_type=effects.PROBE_EVENT_TYPE,
            aggregate_type="probe",
            aggregate_id=ids[index % aggregates],
            sequence=index // aggregates + 1,
            correlation_id="bulk",
            occurred_at=now,
            next_attempt_at=now,
        )
        for index in range(count)
    ]
    return OutboxEvent.objects.bulk_create(rows, batch_size=2000)


@pytest.fixture
def effect_table(db):
    effects.effect_table_create()
    yield
    effects.effect_table_drop()


@pytest.fixture
def effect_handler(effect_table):
    effects.register()
    yield
    effects.unregister()

"""The precompiled hot-path statements write and read exactly what the ORM would."""

import uuid
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import NOT_PROVIDED
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.sql.precompiled import (
    row_get,
    row_insert,
    rows_as_instances,
    rows_update,
    rows_update_then_insert,
)
from sla.models import SLARecord
from workflow.models import Task


def concrete_values(instance) -> dict:
    """Every column the application writes (those with a database default are the database's)."""
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.db_default is NOT_PROVIDED
    }


@pytest.mark.django_db
def test_row_insert_stores_every_column_as_the_orm_reads_it(agent):
    event = OutboxEvent(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=uuid.uuid4(),
        sequence=3,
        actor=agent,
        correlation_id="corr-1",
        causation_id=uuid.uuid4(),
        depth=2,
        payload={"nested": {"list": [1, "two", None]}, "text": "é ✓"},
    )
    row_insert(event)

    stored = OutboxEvent.objects.get(pk=event.pk)
    assert concrete_values(stored) == concrete_values(event)
    assert event._state.adding is False  # a later save() updates, never inserts twice


@pytest.mark.django_db
def test_row_insert_violating_a_constraint_raises_like_the_orm(make_task):
    from django.db import IntegrityError

    task = make_task()
    duplicate = OutboxEvent(
        event_type="TaskCreated", aggregate_type="task", aggregate_id=task.pk, sequence=1, correlation_id="c"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(duplicate)  # (aggregate, sequence 1) already holds TaskCreated


@pytest.mark.django_db
def test_rows_update_is_a_compare_and_swap(make_task):
    task = make_task()
    later = timezone.now() + timedelta(minutes=5)

    assert rows_update(Task, where={"id": task.pk, "version": 99}, values={"state": "in_progress"}) == 0
    assert (
        rows_update(
            Task,
            where={"id": task.pk, "version": task.version},
            values={"state": "in_progress", "updated_at": later},
        )
        == 1
    )

    task.refresh_from_db()
    assert (task.state, task.updated_at) == ("in_progress", later)


def _event_for(task, sequence: int) -> OutboxEvent:
    return OutboxEvent(
        event_type="TaskUpdated",
        aggregate_type="task",
        aggregate_id=task.pk,
        sequence=sequence,
        actor_id=None,
        correlation_id="c",
        payload={"changes": {"title": {"old": "a", "new": "b"}}, "n": 1.5},
    )


@pytest.mark.django_db
def test_rows_update_then_insert_writes_both_or_nothing(make_task):
    task = make_task()
    stale = _event_for(task, 2)
    assert rows_update_then_insert(
        Task, where={"id": task.pk, "version": 99}, values={"version": 100}, instance=stale
    ) == (0, None)
    assert not OutboxEvent.objects.filter(pk=stale.pk).exists()
    assert stale._state.adding is True

    event = _event_for(task, 2)
    inserted, locked = rows_update_then_insert(
        Task,
        where={"id": task.pk, "version": task.version},
        values={"version": 2, "title": "Claimed"},
        instance=event,
        lock=(SLARecord, {"task": task.pk}),
    )
    assert inserted == 1
    assert concrete_values(locked) == concrete_values(SLARecord.objects.get(task=task))
    assert concrete_values(OutboxEvent.objects.get(pk=event.pk)) == concrete_values(event)
    assert Task.objects.values_list("version", "title").get(pk=task.pk) == (2, "Claimed")
    # No row to lock: (1, None), the writes done all the same.
    SLARecord.objects.filter(task=task).delete()
    assert rows_update_then_insert(
        Task,
        where={"id": task.pk, "version": 2},
        values={"version": 3},
        instance=_event_for(task, 3),
        lock=(SLARecord, {"task": task.pk}),
    ) == (1, None)
    assert OutboxEvent.objects.filter(aggregate_id=task.pk, sequence=3).count() == 1


@pytest.mark.django_db
def test_row_get_returns_what_the_orm_returns_including_json_columns(make_task):
    task = make_task()
    record = SLARecord.objects.get(task=task)
    record.calendar_snapshot = {
        "timezone": "Europe/Berlin",
        "workdays": [0, 1, 2],
        "holidays": ["2026-12-25"],
    }
    record.warnings_sent = [50]
    record.save()

    assert concrete_values(row_get(SLARecord, where={"task_id": task.pk})) == concrete_values(
        SLARecord.objects.get(pk=record.pk)
    )
    assert concrete_values(
        row_get(Task, where={"id": task.pk, "agency_id": task.agency_id})
    ) == concrete_values(Task.objects.get(pk=task.pk))
    assert row_get(Task, where={"id": task.pk, "agency_id": uuid.uuid4()}) is None
    assert row_get(Task, where={"id": uuid.uuid4()}) is None


@pytest.mark.django_db
def test_rows_as_instances_builds_what_the_orm_loads(make_task):
    task = make_task()
    record = SLARecord.objects.get(task=task)
    record.calendar_snapshot = {"timezone": "Europe/Berlin", "workdays": [0, 1, 2], "holidays": []}
    record.save()
    columns = ", ".join(field.column for field in SLARecord._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM sla_slarecord WHERE id = %s", [record.pk])  # noqa: S608
        (built,) = rows_as_instances(SLARecord, cursor.fetchall())

    loaded = SLARecord.objects.get(pk=record.pk)
    assert concrete_values(built) == concrete_values(loaded)
    assert built.calendar_snapshot["timezone"] == "Europe/Berlin"  # JSON converted, not a string
    assert (built._state.adding, built._state.db) == (False, "default")
    assert built == loaded
    built.save(update_fields=["paused_seconds"])  # a loaded instance: an UPDATE, not an INSERT
    assert SLARecord.objects.count() == 1


@pytest.mark.django_db
def test_hot_statements_alone_are_prepared_on_the_server(make_task):
    """The precompiled statements are prepared once per connection; ORM queries never are (a generic plan
    could not use a partial index whose predicate they state with parameters)."""
    task = make_task()
    for _ in range(10):
        row_get(Task, where={"id": task.pk, "agency_id": task.agency_id})
        SLARecord.objects.filter(status=SLARecord.Status.RUNNING, due_at__lte=timezone.now()).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "workflow_task" WHERE "id" = $1 AND "agency_id" = $2' in text for text in prepared)
    assert not any("sla_slarecord" in text for text in prepared)


@pytest.mark.django_db(transaction=True)
def test_row_get_with_lock_holds_the_row_until_commit(make_task):
    task = make_task()
    params = {**connection.get_connection_params()}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as rival:
        with transaction.atomic():
            assert row_get(Task, where={"id": task.pk}, lock=True) is not None
            with pytest.raises(psycopg.errors.LockNotAvailable):
                rival.execute("SELECT 1 FROM workflow_task WHERE id = %s FOR UPDATE NOWAIT", [task.pk])
        # Committed: the rival may lock it now.
        rival.execute("SELECT 1 FROM workflow_task WHERE id = %s FOR UPDATE NOWAIT", [task.pk])


class RecordingRouter:
    """Routes everything to ``default`` and remembers which models it was asked about, and for what."""

    calls: list[tuple[str, str]] = []

    def db_for_read(self, model, **hints):
        self.calls.append(("read", model._meta.label))
        return "default"

    def db_for_write(self, model, **hints):
        self.calls.append(("write", model._meta.label))
        return "default"


@pytest.mark.django_db
def test_statements_run_on_the_database_the_routers_choose(settings, make_task):
    task = make_task()
    RecordingRouter.calls = []
    settings.DATABASE_ROUTERS = [f"{__name__}.RecordingRouter"]  # Django resets its router cache
    assert row_get(Task, where={"id": task.pk}) is not None
    rows_update(Task, where={"id": task.pk}, values={"title": "Routed"})
    row_insert(
        OutboxEvent(
            event_type="Routed", aggregate_type="task", aggregate_id=uuid.uuid4(), sequence=1, payload={}
        )
    )
    assert RecordingRouter.calls == [
        ("read", "workflow.Task"),
        ("write", "workflow.Task"),
        ("write", "outbox.OutboxEvent"),
    ]

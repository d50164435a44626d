"""Checklists on tasks (services): adding and ticking items write one event each on the task's stream, the
counters follow, the ``checklist_complete`` guard refuses a completion with a required item open, and only
a supervisor (or an admin) overrides it, with a reason that the event records."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from outbox.models import OutboxEvent
from polaris.errors import GuardFailed, NotFound, PermissionDenied, ValidationFailed
from workflow.errors import TaskClosed
from workflow.models import Task, TaskChecklistItem
from workflow.services.checklists import (
    checklist_item_set_done,
    checklist_items_add,
    checklist_items_add_many,
)
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

ITEMS = [{"text": "Check ID documents", "required": True}, {"text": "Offer a leaflet", "required": False}]


def events_of(task):
    return list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))


@pytest.fixture
def started(make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    return Task.objects.get(pk=task.pk)


def test_adding_items_writes_one_event_and_keeps_the_stream_gap_free(started, agent):
    rows = checklist_items_add(started, ITEMS, actor=agent)
    assert [(row.position, row.text, row.required) for row in rows] == [
        (0, "Check ID documents", True),
        (1, "Offer a leaflet", False),
    ]
    task = Task.objects.get(pk=started.pk)
    assert (task.checklist_size, task.checklist_open_required, task.version) == (2, 1, 3)
    assert started.version == 3  # the caller's instance follows
    events = events_of(task)
    assert [e.sequence for e in events] == [1, 2, 3]
    added = events[-1]
    assert added.event_type == "TaskChecklistItemsAdded"
    assert added.actor_id == agent.pk
    assert [item["item_id"] for item in added.payload["items"]] == [str(row.pk) for row in rows]
    # The item's words never enter the event: its length and keyed digest only.
    assert added.payload["items"][0]["text"] == {
        "length": 18,
        "digest": added.payload["items"][0]["text"]["digest"],
    }
    assert "Check ID" not in str(added.payload)


def test_ticking_and_unticking_are_events_and_move_the_counter(started, agent):
    required, optional = checklist_items_add(started, ITEMS, actor=agent)
    task, item, event = checklist_item_set_done(
        task_id=started.pk, item_id=required.pk, done=True, actor=agent
    )
    assert item.done
    assert item.done_by_id == agent.pk
    assert item.done_at is not None
    assert task.checklist_open_required == 0
    assert event.event_type == "TaskChecklistItemChanged"
    assert event.payload["item"]["item_id"] == str(required.pk)
    assert event.payload["item"]["done"] is True
    assert event.payload["checklist_open_required"] == 0

    # The same value again changes nothing and writes nothing.
    _, _, none = checklist_item_set_done(task_id=started.pk, item_id=required.pk, done=True, actor=agent)
    assert none is None

    task, item, event = checklist_item_set_done(
        task_id=started.pk, item_id=required.pk, done=False, actor=agent
    )
    assert not item.done
    assert item.done_by_id is None
    assert item.done_at is None
    assert Task.objects.get(pk=started.pk).checklist_open_required == 1
    # An optional item does not move the counter of required open items.
    checklist_item_set_done(task_id=started.pk, item_id=optional.pk, done=True, actor=agent)
    task = Task.objects.get(pk=started.pk)
    assert task.checklist_open_required == 1
    assert [e.sequence for e in events_of(task)] == list(range(1, task.version + 1))
    assert [e.event_type for e in events_of(task)][-3:] == ["TaskChecklistItemChanged"] * 3


def test_completion_is_refused_while_a_required_item_is_open(started, agent):
    (required, _optional) = checklist_items_add(started, ITEMS, actor=agent)
    with pytest.raises(GuardFailed) as refused:
        task_transition(task_id=started.pk, target_state="completed", actor=agent)
    assert refused.value.details["guards"] == ["checklist_complete"]
    assert Task.objects.get(pk=started.pk).state == "in_progress"

    checklist_item_set_done(task_id=started.pk, item_id=required.pk, done=True, actor=agent)
    task, event = task_transition(task_id=started.pk, target_state="completed", actor=agent)
    assert task.state == "completed"  # the optional item may stay open
    assert "overridden_guards" not in event.payload


def test_an_agent_cannot_override_but_a_supervisor_can_with_a_reason(started, agent, supervisor):
    checklist_items_add(started, ITEMS, actor=agent)
    with pytest.raises(PermissionDenied):
        task_transition(
            task_id=started.pk, target_state="completed", actor=agent, reason="done", override_checklist=True
        )
    with pytest.raises(ValidationFailed) as no_reason:
        task_transition(
            task_id=started.pk, target_state="completed", actor=supervisor, override_checklist=True
        )
    assert "reason" in no_reason.value.details
    with pytest.raises(ValidationFailed):
        task_transition(
            task_id=started.pk,
            target_state="cancelled",
            actor=supervisor,
            reason="x",
            override_checklist=True,
        )
    assert events_of(started)[-1].event_type == "TaskChecklistItemsAdded"  # nothing written meanwhile

    task, event = task_transition(
        task_id=started.pk,
        target_state="completed",
        actor=supervisor,
        reason="Client moved away; ID check impossible",
        override_checklist=True,
    )
    assert task.state == "completed"
    assert event.event_type == "TaskStateChanged"
    assert event.payload["overridden_guards"] == ["checklist_complete"]
    assert event.payload["reason"] == "Client moved away; ID check impossible"
    assert event.actor_id == supervisor.pk


def test_an_admin_overrides_and_another_agencys_supervisor_cannot(
    started, agent, admin_user, other_supervisor
):
    checklist_items_add(started, ITEMS, actor=agent)
    with pytest.raises(NotFound):  # out of scope
        task_transition(
            task_id=started.pk,
            target_state="completed",
            actor=other_supervisor,
            reason="x",
            override_checklist=True,
        )
    _, event = task_transition(
        task_id=started.pk,
        target_state="completed",
        actor=admin_user,
        reason="Audit",
        override_checklist=True,
    )
    assert event.payload["overridden_guards"] == ["checklist_complete"]


def test_bounds_and_bad_items_write_nothing(started, agent):
    with pytest.raises(ValidationFailed) as bad:
        checklist_items_add(
            started,
            [
                {"text": "  "},
                {"text": "x" * 501},
                {"text": "ok", "required": "yes"},
                "nope",
                {"text": "a", "due": 1},
            ],
            actor=agent,
        )
    assert set(bad.value.details) == {
        "items[0].text",
        "items[1].text",
        "items[2].required",
        "items[3]",
        "items[4]",
    }
    checklist_items_add(started, [{"text": f"step {n}"} for n in range(45)], actor=agent)
    with pytest.raises(ValidationFailed):
        checklist_items_add(started, [{"text": f"more {n}"} for n in range(6)], actor=agent)
    with pytest.raises(ValidationFailed):
        checklist_items_add(started, [{"text": f"s {n}"} for n in range(51)], actor=agent)
    task = Task.objects.get(pk=started.pk)
    assert task.checklist_size == 45 == TaskChecklistItem.objects.filter(task=task).count()
    assert task.checklist_open_required == 45  # required defaults to true


def test_who_may_change_a_checklist(started, agent, client_user, other_agent):
    (item, _) = checklist_items_add(started, ITEMS, actor=agent)
    with pytest.raises(PermissionDenied):
        checklist_items_add(started, ITEMS, actor=client_user)
    with pytest.raises(PermissionDenied):
        checklist_item_set_done(task_id=started.pk, item_id=item.pk, done=True, actor=client_user)
    with pytest.raises(NotFound):
        checklist_item_set_done(task_id=started.pk, item_id=item.pk, done=True, actor=other_agent)
    with pytest.raises(PermissionDenied):  # staff of another agency, handed the task by a caller
        checklist_items_add(started, ITEMS, actor=other_agent)


def test_an_item_of_another_task_is_not_found(started, make_task, agent):
    other = make_task()
    (item,) = checklist_items_add(other, [{"text": "Elsewhere"}], actor=agent)
    with pytest.raises(NotFound):
        checklist_item_set_done(task_id=started.pk, item_id=item.pk, done=True, actor=agent)
    with pytest.raises(NotFound):
        checklist_item_set_done(task_id=started.pk, item_id="not-a-uuid", done=True, actor=agent)


def test_a_closed_task_keeps_its_checklist(started, agent):
    (item, _) = checklist_items_add(started, ITEMS, actor=agent)
    task_transition(task_id=started.pk, target_state="cancelled", actor=agent)
    with pytest.raises(TaskClosed):
        checklist_item_set_done(task_id=started.pk, item_id=item.pk, done=True, actor=agent)
    with pytest.raises(TaskClosed):
        checklist_items_add(Task.objects.get(pk=started.pk), ITEMS, actor=agent)


def test_many_tasks_take_their_items_in_a_fixed_number_of_statements(make_task, agent):
    tasks = [make_task() for _ in range(20)]
    pairs = [(task, [{"text": f"Step {n}", "required": n % 2 == 0} for n in range(3)]) for task in tasks]
    with CaptureQueriesContext(connection) as captured:
        rows = checklist_items_add_many(pairs, actor=agent)
    sqls = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The tasks' lock, the items' INSERT, the tasks' UPDATE, the events' INSERT.
    assert len(sqls) == 4, sqls
    assert len(rows) == 60
    for task in tasks:
        stored = Task.objects.get(pk=task.pk)
        assert (stored.version, stored.checklist_size, stored.checklist_open_required) == (2, 3, 2)
        assert task.version == 2
        events = events_of(stored)
        assert [(e.sequence, e.event_type) for e in events] == [
            (1, "TaskCreated"),
            (2, "TaskChecklistItemsAdded"),
        ]
        assert len(events[-1].payload["items"]) == 3
        assert events[-1].actor_id == agent.pk


def test_many_refuses_all_when_one_task_is_refused(make_task, agent, other_agency, other_client):
    from workflow.services.tasks import task_create

    mine = make_task()
    theirs = task_create(
        actor=None, title="Theirs", task_type="intake", client=other_client, agency=other_agency
    )
    with pytest.raises(PermissionDenied):
        checklist_items_add_many([(mine, ITEMS), (theirs, ITEMS)], actor=agent)
    assert not TaskChecklistItem.objects.exists()
    assert Task.objects.get(pk=mine.pk).version == 1
    # The system (actor None) may add to any task, as template instantiation does.
    checklist_items_add_many([(mine, ITEMS), (theirs, ITEMS)], actor=None)
    assert TaskChecklistItem.objects.count() == 4

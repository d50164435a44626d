"""The checklist over HTTP: staff add and tick items, the task shows them in order, clients read them but
cannot change them, other agencies see nothing (404), bad bodies are 400s, and completing with a required
item open is GUARD_FAILED naming checklist_complete unless a supervisor overrides it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support.api import assert_envelope
from workflow.machines import machine_describe
from workflow.models import ActionPlan, Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    return task


def add(api, task, items):
    return api.post(f"/api/workflow/tasks/{task.pk}/checklist", {"items": items}, format="json")


def tick(api, task, item_id, done=True):
    return api.patch(f"/api/workflow/tasks/{task.pk}/checklist/{item_id}", {"done": done}, format="json")


def test_staff_add_and_tick_items_and_the_task_shows_them_in_order(agent_api, task):
    response = add(agent_api, task, [{"text": "Call the landlord"}, {"text": "Leaflet", "required": False}])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["ETag"] == f'"{body["version"]}"' == '"3"'
    assert [(i["text"], i["required"], i["done"]) for i in body["checklist"]] == [
        ("Call the landlord", True, False),
        ("Leaflet", False, False),
    ]
    assert "completed" not in body["available_transitions"]
    first = body["checklist"][0]["id"]

    ticked = tick(agent_api, task, first)
    assert ticked.status_code == 200, ticked.json()
    item = ticked.json()["checklist"][0]
    assert item["done"] is True
    assert item["done_by"] is not None
    assert item["done_at"]
    assert "completed" in ticked.json()["available_transitions"]
    assert agent_api.get(f"/api/workflow/tasks/{task.pk}").json()["checklist"][0]["done"] is True

    events = agent_api.get(f"/api/workflow/tasks/{task.pk}/events").json()["results"]
    assert [e["event_type"] for e in events][-2:] == ["TaskChecklistItemsAdded", "TaskChecklistItemChanged"]


def test_completing_with_a_required_item_open_and_the_override(agent_api, api_for, supervisor, task):
    add(agent_api, task, [{"text": "Check ID"}])
    refused = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "completed"}, format="json"
    )
    body = assert_envelope(refused, 400, "GUARD_FAILED")
    assert body["details"]["guards"] == ["checklist_complete"]
    agent_override = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition",
        {"target_state": "completed", "reason": "no", "override_checklist": True},
        format="json",
    )
    assert_envelope(agent_override, 403, "PERMISSION_DENIED")
    done = api_for(supervisor).post(
        f"/api/workflow/tasks/{task.pk}/transition",
        {"target_state": "completed", "reason": "Client declined the check", "override_checklist": True},
        format="json",
    )
    assert done.status_code == 200, done.json()
    assert done.json()["task"]["state"] == "completed"
    assert done.json()["event"]["payload"]["overridden_guards"] == ["checklist_complete"]
    assert done.json()["event"]["payload"]["reason"] == "Client declined the check"


def test_a_client_reads_the_checklist_but_cannot_change_it(agent_api, client_api, task):
    item = add(agent_api, task, [{"text": "Bring your lease"}]).json()["checklist"][0]
    tick(agent_api, task, item["id"])
    seen = client_api.get(f"/api/workflow/tasks/{task.pk}").json()["checklist"]
    assert seen == [
        {k: v for k, v in item.items() if k != "done_by"} | {"done": True, "done_at": seen[0]["done_at"]}
    ]
    assert "done_by" not in seen[0]
    assert_envelope(tick(client_api, task, item["id"], False), 403, "PERMISSION_DENIED")
    assert_envelope(add(client_api, task, [{"text": "Mine"}]), 403, "PERMISSION_DENIED")
    # The client's event history shows the checklist events (no words in them to hide).
    events = client_api.get(f"/api/workflow/tasks/{task.pk}/events").json()["results"]
    assert events[-1]["event_type"] == "TaskChecklistItemChanged"
    assert events[-1]["payload"]["item"]["done"] is True


def test_another_agency_sees_nothing(agent_api, other_agent_api, api_for, other_supervisor, task):
    item = add(agent_api, task, [{"text": "Private step"}]).json()["checklist"][0]
    assert_envelope(add(other_agent_api, task, [{"text": "x"}]), 404, "NOT_FOUND")
    assert_envelope(tick(other_agent_api, task, item["id"]), 404, "NOT_FOUND")
    override = api_for(other_supervisor).post(
        f"/api/workflow/tasks/{task.pk}/transition",
        {"target_state": "completed", "reason": "x", "override_checklist": True},
        format="json",
    )
    assert_envelope(override, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"text": ""}]},
        {"items": [{"text": "x" * 501}]},
        {"items": [{"text": "ok", "required": "yes"}]},
        {"items": [{"text": "ok", "done": True}]},
        {"items": [{"text": f"s{n}"} for n in range(51)]},
        {"items": "nope"},
        {"items": [{"text": "ok"}], "extra": 1},
        {},
    ],
)
def test_bad_bodies_are_400_and_write_nothing(agent_api, task, body):
    response = agent_api.post(f"/api/workflow/tasks/{task.pk}/checklist", body, format="json")
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert Task.objects.get(pk=task.pk).checklist_size == 0


def test_bad_ticks(agent_api, task):
    item = add(agent_api, task, [{"text": "One"}]).json()["checklist"][0]
    assert_envelope(tick(agent_api, task, item["id"], "true"), 400, "VALIDATION_ERROR")
    # A PATCH names only what changes: an empty one changes nothing and writes no event.
    empty = agent_api.patch(f"/api/workflow/tasks/{task.pk}/checklist/{item['id']}", {}, format="json")
    assert empty.status_code == 200, empty.json()
    assert empty.json()["checklist"][0]["done"] is False
    assert empty.json()["version"] == Task.objects.get(pk=task.pk).version
    assert_envelope(tick(agent_api, task, item["id"], None), 400, "VALIDATION_ERROR")
    assert_envelope(tick(agent_api, task, "00000000-0000-0000-0000-000000000000"), 404, "NOT_FOUND")
    assert_envelope(tick(agent_api, task, "nope"), 404, "NOT_FOUND")


def test_a_list_page_reads_every_checklist_in_one_statement(agent_api, make_task):
    tasks = [make_task() for _ in range(4)]
    for task in tasks[:3]:
        add(agent_api, task, [{"text": f"{task.pk} a"}, {"text": f"{task.pk} b"}])
    agent_api.get("/api/workflow/tasks")
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get("/api/workflow/tasks", {"page_size": 20})
    rows = response.json()["results"]
    checklist_reads = [q for q in captured.captured_queries if '"workflow_taskchecklistitem"' in q["sql"]]
    assert len(checklist_reads) == 1
    by_id = {row["id"]: row["checklist"] for row in rows}
    for task in tasks[:3]:
        assert [i["text"] for i in by_id[str(task.pk)]] == [f"{task.pk} a", f"{task.pk} b"]
    assert by_id[str(tasks[3].pk)] == []


def test_metadata_lists_the_new_guards(client_api):
    machines = client_api.get("/api/workflow/metadata").json()["machines"]
    complete = next(t for t in machines["task"]["transitions"] if t["name"] == "complete")
    assert complete["guards"] == ["checklist_complete"]
    activate = next(t for t in machines["action_plan"]["transitions"] if t["name"] == "activate")
    assert activate["guards"] == ["has_tasks", "approved"]
    assert machines["task"] == machine_describe(Task)
    assert machines["action_plan"] == machine_describe(ActionPlan)

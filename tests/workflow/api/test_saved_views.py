"""Saved views: CRUD, who sees and changes what (private, shared with the agency, other agencies, clients),
the filter validated like the query string, the view's task list run as the caller, audit and erasure."""

import pytest

from polaris.audit.models import AuditEntry
from polaris.erasure import ERASED
from tests.factories import AgentFactory, ClientFactory
from tests.support.api import assert_envelope, bearer_client
from workflow.saved_views import SavedView
from workflow.services.erasure import client_erase

pytestmark = pytest.mark.django_db
VIEWS = "/api/workflow/views"


@pytest.fixture
def colleague(agency):
    return AgentFactory(username="cora-colleague", agency=agency)


def create(api, **body):
    body.setdefault("name", "My open work")
    body.setdefault("filter", {"state": "new,in_progress", "assignee": "me"})
    return api.post(VIEWS, body, format="json")


def listed(api):
    response = api.get(VIEWS)
    assert response.status_code == 200, response.json()
    return {item["name"] for item in response.json()["results"]}


def test_create_read_update_delete(agent_api, agent, agency):
    response = create(agent_api)
    assert response.status_code == 201, response.json()
    view = response.json()
    assert view["filter"] == {"state": "new,in_progress", "assignee": "me"}
    assert (view["shared"], view["owner"], view["agency"], view["editable"]) == (
        False,
        agent.pk,
        str(agency.pk),
        True,
    )
    assert agent_api.get(f"{VIEWS}/{view['id']}").json()["name"] == "My open work"
    assert listed(agent_api) == {"My open work"}

    patched = agent_api.patch(
        f"{VIEWS}/{view['id']}", {"name": "Urgent", "filter": {"priority": "urgent"}}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["name"], patched.json()["filter"]) == ("Urgent", {"priority": "urgent"})

    assert agent_api.delete(f"{VIEWS}/{view['id']}").status_code == 204
    assert_envelope(agent_api.get(f"{VIEWS}/{view['id']}"), 404, "NOT_FOUND")
    assert not SavedView.objects.exists()


def test_private_views_are_invisible_to_colleagues(agent_api, colleague):
    view = create(agent_api).json()
    colleague_api = bearer_client(colleague)
    assert listed(colleague_api) == set()
    assert_envelope(colleague_api.get(f"{VIEWS}/{view['id']}"), 404, "NOT_FOUND")
    assert_envelope(colleague_api.get(f"{VIEWS}/{view['id']}/tasks"), 404, "NOT_FOUND")
    assert_envelope(
        colleague_api.patch(f"{VIEWS}/{view['id']}", {"name": "x"}, format="json"), 404, "NOT_FOUND"
    )
    assert_envelope(colleague_api.delete(f"{VIEWS}/{view['id']}"), 404, "NOT_FOUND")


def test_shared_views_are_seen_by_the_agency_and_changed_by_owner_supervisor_admin(
    agent_api, colleague, supervisor, admin_api, other_agent, other_supervisor
):
    view = create(agent_api, name="Team queue", shared=True).json()
    url = f"{VIEWS}/{view['id']}"
    colleague_api = bearer_client(colleague)
    assert listed(colleague_api) == {"Team queue"}
    assert colleague_api.get(url).json()["editable"] is False
    assert_envelope(colleague_api.patch(url, {"name": "Mine now"}, format="json"), 403, "PERMISSION_DENIED")
    assert_envelope(colleague_api.delete(url), 403, "PERMISSION_DENIED")

    supervisor_api = bearer_client(supervisor)
    assert supervisor_api.get(url).json()["editable"] is True
    assert supervisor_api.patch(url, {"name": "Team queue (checked)"}, format="json").status_code == 200

    for outsider in (other_agent, other_supervisor):
        outsider_api = bearer_client(outsider)
        assert listed(outsider_api) == set()
        assert_envelope(outsider_api.get(url), 404, "NOT_FOUND")
        assert_envelope(outsider_api.get(f"{url}/tasks"), 404, "NOT_FOUND")
        assert_envelope(outsider_api.patch(url, {"name": "x"}, format="json"), 404, "NOT_FOUND")

    assert listed(admin_api) == {"Team queue (checked)"}
    assert admin_api.delete(url).status_code == 204


def test_admins_see_every_view(agent_api, other_agent_api, admin_api):
    create(agent_api, name="A's private")
    create(other_agent_api, name="B's shared", shared=True)
    assert listed(admin_api) == {"A's private", "B's shared"}


def test_clients_may_not_use_saved_views(client_api, agent_api):
    view = create(agent_api, shared=True).json()
    assert_envelope(client_api.get(VIEWS), 403, "PERMISSION_DENIED")
    assert_envelope(create(client_api), 403, "PERMISSION_DENIED")
    assert_envelope(client_api.get(f"{VIEWS}/{view['id']}"), 403, "PERMISSION_DENIED")
    assert_envelope(client_api.get(f"{VIEWS}/{view['id']}/tasks"), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("filters", "problem"),
    [
        ({"state": "new,bogus"}, "state"),
        ({"priority": "soon"}, "priority"),
        ({"assignee": "nobody"}, "assignee"),
        ({"search": "x" * 101}, "search"),
        ({"due_before": "tomorrow"}, "due_before"),
        ({"overdue": "yes"}, "overdue"),  # a JSON boolean, as the schema says
        ({"client": "7"}, "client"),  # a JSON integer
        ({"state": ["new", "blocked"]}, "state"),  # one comma list, not a JSON list
        ({"page": 2}, "page"),  # not a filter
        ({"colour": "red"}, "colour"),
        ({"sla_status": "late"}, "sla_status"),
    ],
)
def test_the_filter_is_validated_like_the_query_string(agent_api, filters, problem):
    body = assert_envelope(create(agent_api, filter=filters), 400, "VALIDATION_ERROR")
    assert problem in body["details"]["filter"], body
    assert not SavedView.objects.exists()


@pytest.mark.parametrize(
    "body", [{"filter": {}}, {"name": "", "filter": {}}, {"name": "x" * 101}, {"name": "ok", "owner": 1}]
)
def test_bad_bodies_are_400(agent_api, body):
    assert_envelope(agent_api.post(VIEWS, body, format="json"), 400, "VALIDATION_ERROR")


def test_names_are_unique_per_owner_and_views_per_owner_are_bounded(agent_api, colleague, monkeypatch):
    assert create(agent_api, name="Mine").status_code == 201
    assert_envelope(create(agent_api, name="Mine"), 409, "SAVED_VIEW_NAME_TAKEN")
    assert create(bearer_client(colleague), name="Mine").status_code == 201  # another owner: fine
    second = create(agent_api, name="Second").json()
    assert_envelope(
        agent_api.patch(f"{VIEWS}/{second['id']}", {"name": "Mine"}, format="json"),
        409,
        "SAVED_VIEW_NAME_TAKEN",
    )
    monkeypatch.setattr("workflow.services.saved_views.SAVED_VIEWS_PER_OWNER", 2)
    body = assert_envelope(create(agent_api, name="Third"), 409, "SAVED_VIEW_LIMIT_REACHED")
    assert body["details"] == {"limit": 2}


def test_the_views_tasks_are_the_list_for_its_filter_run_as_the_caller(
    agent_api, make_task, colleague, agent
):
    mine = make_task(title="Eviction notice", priority="urgent")
    theirs = make_task(title="Eviction appeal", priority="urgent", assignee=colleague)
    make_task(title="Home visit", priority="low")
    view = create(
        agent_api,
        name="My urgent evictions",
        shared=True,
        filter={"search": "evict", "assignee": "me", "priority": "urgent,high"},
    ).json()
    response = agent_api.get(f"{VIEWS}/{view['id']}/tasks")
    assert response.status_code == 200, response.json()
    assert response.json()["count"] == 1
    assert [task["id"] for task in response.json()["results"]] == [str(mine.pk)]
    # "me" is whoever opens the shared view.
    colleague_tasks = bearer_client(colleague).get(f"{VIEWS}/{view['id']}/tasks").json()
    assert [task["id"] for task in colleague_tasks["results"]] == [str(theirs.pk)]
    paged = agent_api.get(f"{VIEWS}/{view['id']}/tasks", {"page_size": 1, "page": 2})
    assert paged.status_code == 200
    assert paged.json()["results"] == []
    assert_envelope(agent_api.get(f"{VIEWS}/{view['id']}/tasks", {"state": "new"}), 400, "VALIDATION_ERROR")


def test_malformed_ids_are_404(agent_api):
    for url in (
        f"{VIEWS}/not-a-uuid",
        f"{VIEWS}/not-a-uuid/tasks",
        f"{VIEWS}/00000000-0000-0000-0000-000000000000",
    ):
        assert_envelope(agent_api.get(url), 404, "NOT_FOUND")


def test_changes_to_shared_views_are_audited_without_the_search_text(agent_api, agency):
    private = create(agent_api, name="Private", filter={"search": "Martinez"}).json()
    assert not AuditEntry.objects.filter(object_type="savedview").exists()
    shared = create(
        agent_api, name="Shared", shared=True, filter={"search": "Martinez", "state": "new"}
    ).json()
    agent_api.patch(f"{VIEWS}/{private['id']}", {"shared": True}, format="json")
    agent_api.patch(f"{VIEWS}/{shared['id']}", {"name": "Shared (renamed)"}, format="json")
    agent_api.delete(f"{VIEWS}/{shared['id']}")
    entries = list(AuditEntry.objects.filter(object_type="savedview").order_by("at", "id"))
    assert [entry.action for entry in entries] == [
        "saved_view.created",
        "saved_view.shared",
        "saved_view.updated",
        "saved_view.deleted",
    ]
    assert all(entry.agency_id == agency.pk for entry in entries)
    created = entries[0].after
    assert created["filter"]["state"] == "new"
    assert set(created["filter"]["search"]) == {"length", "digest"}
    assert "Martinez" not in str([entry.before for entry in entries] + [entry.after for entry in entries])


def test_erasing_a_client_erases_their_name_from_views(agent_api, admin_user, agency):
    client = ClientFactory(username="c-rosa", first_name="Rosa", last_name="Quintanilla", agency=agency)
    named = create(
        agent_api, name="Quintanilla family", filter={"search": "quintanilla", "state": "new"}
    ).json()
    by_id = create(agent_api, name="Her tasks", filter={"client": client.pk}).json()
    other = create(agent_api, name="Evictions", filter={"search": "eviction"}).json()
    result = client_erase(client_id=client.pk, actor=admin_user)
    assert result["counts"]["saved_views"] == 1
    erased = SavedView.objects.get(pk=named["id"])
    assert erased.name.startswith(ERASED)
    assert erased.filter == {"search": ERASED, "state": "new"}
    assert SavedView.objects.get(pk=by_id["id"]).filter == {"client": client.pk}  # an id, not personal data
    assert SavedView.objects.get(pk=other["id"]).name == "Evictions"


def test_erasing_a_client_erases_their_name_from_shared_views_audit_entries(agent_api, admin_user, agency):
    client = ClientFactory(username="c-rosa", first_name="Rosa", last_name="Quintanilla", agency=agency)
    kept = create(agent_api, name="Quintanilla family", filter={"state": "new"}, shared=True).json()
    gone = create(agent_api, name="Rosa's plan", filter={"state": "new"}, shared=True).json()
    assert agent_api.delete(f"/api/workflow/views/{gone['id']}").status_code == 204
    other = create(agent_api, name="Evictions", filter={"state": "new"}, shared=True).json()
    entries = AuditEntry.objects.filter(object_type="savedview")
    assert "Quintanilla" in str([entry.after for entry in entries])
    dry = client_erase(client_id=client.pk, actor=admin_user, dry_run=True)
    assert dry["counts"]["saved_views"] == 4  # one view, three entries (created x2, deleted)
    client_erase(client_id=client.pk, actor=admin_user)
    text = str([(entry.before, entry.after) for entry in entries.all()])
    assert "Quintanilla" not in text
    assert "Rosa" not in text
    assert f"{ERASED} {kept['id'][:8]}" in text
    assert entries.get(object_id=other["id"]).after["name"] == "Evictions"

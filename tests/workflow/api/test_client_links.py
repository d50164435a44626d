"""Clients linked to agencies explicitly: the link endpoints, their events, and how links scope what an
agency sees and the work anyone may create (supervisor/agent/client by own/other agency)."""

import pytest

from outbox.models import OutboxEvent
from polaris.accounts.models import ClientAgencyLink, client_aggregate_id
from tests.factories import ClientFactory
from tests.support.api import assert_envelope, bearer_client

pytestmark = pytest.mark.django_db

USERS = "/api/workflow/users"
TASKS = "/api/workflow/tasks"
PLANS = "/api/workflow/action-plans"


def links_url(client) -> str:
    return f"{USERS}/{client.pk}/agencies"


def client_events(client) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(
            aggregate_type="client", aggregate_id=client_aggregate_id(client.pk)
        ).order_by("sequence")
    )


@pytest.fixture
def unserved(db):
    return ClientFactory(username="uma-unserved", agency=None)


def test_supervisor_links_an_unserved_client_and_unlinks_it_with_one_event_each(supervisor, agency, unserved):
    api = bearer_client(supervisor)
    response = api.post(links_url(unserved), {"agency": str(agency.pk)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["client"] == unserved.pk
    assert response.json()["agency"] == str(agency.pk)
    assert response.json()["created_by"] == supervisor.pk
    link = ClientAgencyLink.objects.get(client=unserved)
    assert (link.agency_id, link.created_by_id) == (agency.pk, supervisor.pk)

    again = api.post(links_url(unserved), {"agency": str(agency.pk)}, format="json")
    assert again.status_code == 200  # already linked: nothing new written
    assert len(client_events(unserved)) == 1

    assert api.delete(f"{links_url(unserved)}/{agency.pk}").status_code == 204
    assert not ClientAgencyLink.objects.filter(client=unserved).exists()
    events = client_events(unserved)
    assert [(e.event_type, e.sequence, e.actor_id) for e in events] == [
        ("ClientLinked", 1, supervisor.pk),
        ("ClientUnlinked", 2, supervisor.pk),
    ]
    assert events[0].payload == {"client_id": unserved.pk, "agency_id": str(agency.pk)}


def test_admin_links_a_client_to_a_second_agency(admin_user, client_user, other_agency):
    response = bearer_client(admin_user).post(
        links_url(client_user), {"agency": str(other_agency.pk)}, format="json"
    )
    assert response.status_code == 201
    assert set(
        ClientAgencyLink.objects.filter(client=client_user).values_list("agency__slug", flat=True)
    ) == {
        "north-star",
        "southern-cross",
    }


def test_supervisor_may_not_link_to_another_agency(supervisor, other_agency, unserved):
    response = bearer_client(supervisor).post(
        links_url(unserved), {"agency": str(other_agency.pk)}, format="json"
    )
    assert_envelope(response, 403, "PERMISSION_DENIED")
    assert not ClientAgencyLink.objects.filter(client=unserved).exists()
    assert client_events(unserved) == []


def test_supervisor_may_not_take_over_another_agencys_client(supervisor, agency, other_client):
    response = bearer_client(supervisor).post(
        links_url(other_client), {"agency": str(agency.pk)}, format="json"
    )
    assert_envelope(response, 404, "NOT_FOUND")


def test_supervisor_may_not_unlink_another_agency(admin_user, supervisor, client_user, other_agency):
    bearer_client(admin_user).post(links_url(client_user), {"agency": str(other_agency.pk)}, format="json")
    response = bearer_client(supervisor).delete(f"{links_url(client_user)}/{other_agency.pk}")
    assert_envelope(response, 403, "PERMISSION_DENIED")
    assert ClientAgencyLink.objects.filter(client=client_user, agency=other_agency).exists()


@pytest.mark.parametrize("persona", ["agent", "client_user", "other_agent"])
def test_agents_and_clients_never_manage_links(request, persona, agency, unserved):
    api = bearer_client(request.getfixturevalue(persona))
    assert_envelope(
        api.post(links_url(unserved), {"agency": str(agency.pk)}, format="json"), 403, "PERMISSION_DENIED"
    )
    assert_envelope(api.delete(f"{links_url(unserved)}/{agency.pk}"), 403, "PERMISSION_DENIED")


def test_bad_ids_and_bodies(admin_user, agent, agency, unserved):
    api = bearer_client(admin_user)
    assert_envelope(
        api.post(f"{USERS}/nope/agencies", {"agency": str(agency.pk)}, format="json"), 404, "NOT_FOUND"
    )
    assert_envelope(api.post(links_url(agent), {"agency": str(agency.pk)}, format="json"), 404, "NOT_FOUND")
    body = assert_envelope(
        api.post(links_url(unserved), {"agency": "00000000-0000-0000-0000-000000000000"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "agency" in body["details"]
    assert_envelope(api.post(links_url(unserved), {}, format="json"), 400, "VALIDATION_ERROR")
    assert_envelope(
        api.post(links_url(unserved), {"agency": str(agency.pk), "x": 1}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert_envelope(api.delete(f"{links_url(unserved)}/{agency.pk}"), 404, "NOT_FOUND")
    assert_envelope(api.delete(f"{links_url(unserved)}/not-a-uuid"), 404, "NOT_FOUND")


def test_an_agency_sees_and_creates_work_only_for_its_linked_clients(supervisor, agent, agency, unserved):
    api = bearer_client(agent)
    assert unserved.username not in {u["username"] for u in api.get(USERS).json()["results"]}
    refused = api.post(TASKS, {"title": "T", "task_type": "intake", "client": unserved.pk}, format="json")
    assert "client" in assert_envelope(refused, 400, "VALIDATION_ERROR")["details"]
    refused = api.post(PLANS, {"title": "P", "client": unserved.pk}, format="json")
    assert "client" in assert_envelope(refused, 400, "VALIDATION_ERROR")["details"]

    bearer_client(supervisor).post(links_url(unserved), {"agency": str(agency.pk)}, format="json")
    listed = {u["username"]: u for u in api.get(USERS).json()["results"]}
    assert listed["uma-unserved"]["agencies"] == [str(agency.pk)]
    created = api.post(TASKS, {"title": "T", "task_type": "intake", "client": unserved.pk}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["agency"] == str(agency.pk)

    # Unlinked again: the existing task stays the agency's, the client is out of reach for new work.
    bearer_client(supervisor).delete(f"{links_url(unserved)}/{agency.pk}")
    assert api.get(f"{TASKS}/{created.json()['id']}").status_code == 200
    refused = api.post(TASKS, {"title": "T", "task_type": "intake", "client": unserved.pk}, format="json")
    assert_envelope(refused, 400, "VALIDATION_ERROR")


def test_the_other_agency_never_sees_a_client_it_does_not_serve(other_agent, other_supervisor, client_user):
    for persona in (other_agent, other_supervisor):
        api = bearer_client(persona)
        assert client_user.username not in {u["username"] for u in api.get(USERS).json()["results"]}
        refused = api.post(
            TASKS, {"title": "T", "task_type": "intake", "client": client_user.pk}, format="json"
        )
        assert "client" in assert_envelope(refused, 400, "VALIDATION_ERROR")["details"]


def test_a_client_picks_only_an_agency_it_is_linked_to(admin_user, client_user, agency, other_agency):
    api = bearer_client(client_user)
    refused = api.post(
        TASKS, {"title": "Help", "task_type": "intake", "agency": str(other_agency.pk)}, format="json"
    )
    assert "agency" in assert_envelope(refused, 400, "VALIDATION_ERROR")["details"]

    # Served by two agencies: the client names one, and may name either.
    bearer_client(admin_user).post(links_url(client_user), {"agency": str(other_agency.pk)}, format="json")
    unnamed = api.post(TASKS, {"title": "Help", "task_type": "intake"}, format="json")
    assert "agency" in assert_envelope(unnamed, 400, "VALIDATION_ERROR")["details"]
    named = api.post(
        TASKS, {"title": "Help", "task_type": "intake", "agency": str(other_agency.pk)}, format="json"
    )
    assert named.status_code == 201, named.content
    assert named.json()["agency"] == str(other_agency.pk)


def test_an_unserved_client_may_not_create_work_for_any_agency(unserved, agency):
    response = bearer_client(unserved).post(
        TASKS, {"title": "Help", "task_type": "intake", "agency": str(agency.pk)}, format="json"
    )
    assert "agency" in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


def test_agencies_field_shows_staff_only_what_they_may_know(
    admin_user, agent, client_user, agency, other_agency
):
    bearer_client(admin_user).post(links_url(client_user), {"agency": str(other_agency.pk)}, format="json")

    def cleo(user):
        rows = bearer_client(user).get(USERS, {"search": "cleo"}).json()["results"]
        return next(row for row in rows if row["username"] == "cleo-client")

    assert cleo(admin_user)["agencies"] == sorted([str(agency.pk), str(other_agency.pk)])
    assert cleo(agent)["agencies"] == [str(agency.pk)]  # not which other agencies serve the client
    assert cleo(client_user)["agencies"] is None
    assert (
        next(
            row
            for row in bearer_client(admin_user).get(USERS).json()["results"]
            if row["username"] == agent.username
        )["agencies"]
        is None
    )


def test_the_agency_feed_carries_its_link_events(supervisor, agent, other_agent, agency, unserved):
    bearer_client(supervisor).post(links_url(unserved), {"agency": str(agency.pk)}, format="json")

    def linked(user):
        events = bearer_client(user).get("/api/workflow/events").json()["events"]
        return [e for e in events if e["event_type"] == "ClientLinked"]

    assert [e["payload"]["client_id"] for e in linked(agent)] == [unserved.pk]
    assert linked(other_agent) == []


def test_each_link_change_is_audited_with_its_actor(supervisor, agency, unserved):
    from polaris.audit.models import AuditEntry

    api = bearer_client(supervisor)
    api.post(links_url(unserved), {"agency": str(agency.pk)}, format="json")
    api.post(links_url(unserved), {"agency": str(agency.pk)}, format="json")  # no change: no entry
    api.delete(f"{links_url(unserved)}/{agency.pk}")
    entries = list(AuditEntry.objects.filter(object_type="client_link").order_by("at", "id"))
    assert [entry.action for entry in entries] == ["client_link.created", "client_link.deleted"]
    assert {entry.actor_id for entry in entries} == {supervisor.pk}
    assert {str(entry.agency_id) for entry in entries} == {str(agency.pk)}
    assert entries[0].after == {"client": unserved.pk, "agency": str(agency.pk)}
    assert entries[1].before == entries[0].after

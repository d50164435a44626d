"""Two agencies, four roles: who may see and manage which webhook endpoints, triggers and audit entries.

Admins manage everything (global objects included); a supervisor their own agency's (another agency's
and global ones are 404, creating for them 403); agents and clients are refused (403)."""

import pytest

from automation.services import trigger_create
from automation.webhooks.endpoints import webhook_endpoint_create
from polaris.audit.services import audit_record
from tests.support.api import api_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
ENDPOINTS = "/api/workflow/webhook-endpoints"
TRIGGERS = "/api/workflow/triggers"
AUDIT = "/api/workflow/audit"


@pytest.fixture
def world(agency, other_agency, admin_user, supervisor, other_supervisor, agent, client_user):
    endpoints = {
        "mine": webhook_endpoint_create(name="mine", url="https://a.example.org/", agency_id=agency.pk)[0],
        "theirs": webhook_endpoint_create(
            name="theirs", url="https://b.example.org/", agency_id=other_agency.pk
        )[0],
        "global": webhook_endpoint_create(name="global", url="https://g.example.org/")[0],
    }
    triggers = {
        "mine": trigger_create(name="mine", event_type="TaskCreated", agency_id=agency.pk),
        "theirs": trigger_create(name="theirs", event_type="TaskCreated", agency_id=other_agency.pk),
        "global": trigger_create(name="global", event_type="TaskCreated"),
    }
    return {
        "endpoints": endpoints,
        "triggers": triggers,
        "users": {
            "admin": admin_user,
            "supervisor": supervisor,
            "other_supervisor": other_supervisor,
            "agent": agent,
            "client": client_user,
        },
    }


LISTS = {  # who sees which names in each list (None: 403)
    "admin": {"mine", "theirs", "global"},
    "supervisor": {"mine"},
    "other_supervisor": {"theirs"},
    "agent": None,
    "client": None,
}


@pytest.mark.parametrize("base", [ENDPOINTS, TRIGGERS])
@pytest.mark.parametrize("role", list(LISTS))
def test_lists(api_for, world, base, role):  # noqa: F811
    response = api_for(world["users"][role]).get(base)
    if LISTS[role] is None:
        assert response.status_code == 403
        assert response.data["error_code"] == "PERMISSION_DENIED"
    else:
        assert response.status_code == 200
        assert {row["name"] for row in response.data["results"]} == LISTS[role]


@pytest.mark.parametrize(("kind", "base"), [("endpoints", ENDPOINTS), ("triggers", TRIGGERS)])
@pytest.mark.parametrize("role", list(LISTS))
@pytest.mark.parametrize("which", ["mine", "theirs", "global"])
def test_detail_change_delete(api_for, world, kind, base, role, which):  # noqa: F811
    api = api_for(world["users"][role])
    pk = world[kind][which].pk
    visible = LISTS[role]
    expected = 403 if visible is None else 200 if which in visible else 404
    assert api.get(f"{base}/{pk}").status_code == expected
    assert api.patch(f"{base}/{pk}", {"enabled": False}, format="json").status_code == expected
    assert api.delete(f"{base}/{pk}").status_code == (204 if expected == 200 else expected)


@pytest.mark.parametrize(("kind", "base"), [("endpoints", ENDPOINTS), ("triggers", TRIGGERS)])
def test_a_supervisor_creates_only_for_their_agency(api_for, world, agency, other_agency, kind, base):  # noqa: F811
    api = api_for(world["users"]["supervisor"])
    body = (
        {"name": "new", "url": "https://n.example.org/"}
        if kind == "endpoints"
        else {
            "name": "new",
            "event_type": "TaskCreated",
        }
    )
    for agency_value in (str(other_agency.pk), None):
        response = api.post(base, {**body, "agency": agency_value}, format="json")
        assert response.status_code == 403, response.data
    own = api.post(base, body, format="json")
    assert own.status_code == 201, own.data
    assert own.data["agency"] == str(agency.pk)
    moved = api.patch(f"{base}/{own.data['id']}", {"agency": str(other_agency.pk)}, format="json")
    assert moved.status_code == 403


def test_an_admin_creates_global_and_agency_endpoints(api_for, world, other_agency):  # noqa: F811
    api = api_for(world["users"]["admin"])
    global_ = api.post(
        ENDPOINTS, {"name": "g2", "url": "https://g.example.org/", "agency": None}, format="json"
    )
    assert (global_.status_code, global_.data["agency"]) == (201, None)
    scoped = api.post(
        ENDPOINTS,
        {"name": "b2", "url": "https://b.example.org/", "agency": str(other_agency.pk)},
        format="json",
    )
    assert (scoped.status_code, scoped.data["agency"]) == (201, str(other_agency.pk))


@pytest.mark.parametrize("role", list(LISTS))
def test_audit(api_for, world, agency, other_agency, role):  # noqa: F811
    audit_record(actor=None, action="probe.mine", object_type="probe", agency_id=agency.pk)
    audit_record(actor=None, action="probe.theirs", object_type="probe", agency_id=other_agency.pk)
    response = api_for(world["users"][role]).get(AUDIT, {"object_type": "probe"})
    if LISTS[role] is None:
        assert response.status_code == 403
        return
    seen = {row["action"] for row in response.data["results"]}
    expected = {"admin": {"probe.mine", "probe.theirs"}, "supervisor": {"probe.mine"}}
    assert seen == expected.get(role, {"probe.theirs"})


def test_a_supervisor_cannot_redeliver_another_agencys_delivery(api_for, world, make_task):  # noqa: F811
    from automation.models import WebhookDelivery
    from tests.automation.conftest import latest_event

    event = latest_event(make_task())
    delivery = WebhookDelivery.objects.create(
        endpoint=world["endpoints"]["theirs"], event=event, status="delivered"
    )
    response = api_for(world["users"]["supervisor"]).post(
        f"/api/workflow/webhook-deliveries/{delivery.pk}/redeliver"
    )
    assert response.status_code == 404
    response = api_for(world["users"]["other_supervisor"]).post(
        f"/api/workflow/webhook-deliveries/{delivery.pk}/redeliver"
    )
    assert response.status_code == 200


def test_a_supervisor_dry_runs_only_against_their_agencys_events(
    api_for,  # noqa: F811
    world,
    make_task,
    other_agency,
    other_agent,
    other_client,
):
    from tests.automation.conftest import latest_event

    mine = latest_event(make_task())
    theirs = latest_event(
        make_task(agency=other_agency, actor=other_agent, assignee=other_agent, client=other_client)
    )
    api = api_for(world["users"]["supervisor"])
    url = f"{TRIGGERS}/{world['triggers']['mine'].pk}/dry-run"
    assert api.post(url, {"event_id": str(mine.pk)}, format="json").status_code == 200
    assert api.post(url, {"event_id": str(theirs.pk)}, format="json").status_code == 404

"""Plan template endpoints: create/read/change/version, scoping per agency, audit, the used-version rule."""

import pytest

from careplans.models import PlanTemplate
from polaris.audit.models import AuditEntry
from tests.careplans.conftest import DIAMOND
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

URL = "/api/workflow/plan-templates"


def create(api, **body):
    body.setdefault("name", "Housing pathway")
    body.setdefault("blueprints", DIAMOND)
    return api.post(URL, body, format="json")


def test_a_supervisor_creates_a_template_for_their_agency(supervisor_api, supervisor, agency):
    response = create(supervisor_api, requires_approval={"count": 1, "role": "supervisor"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["agency"] == str(agency.pk)
    assert body["latest_version"] == 1
    assert body["version"]["number"] == 1
    assert body["version"]["in_use"] is False
    assert [b["key"] for b in body["version"]["blueprints"]] == [b["key"] for b in DIAMOND]
    assert body["version"]["requires_approval"] == {"count": 1, "role": "supervisor"}
    entry = AuditEntry.objects.get(action="plan_template.created")
    assert entry.actor_id == supervisor.pk
    assert entry.object_id == str(body["id"])
    assert entry.after["blueprints"][0]["key"] == "intake"


def test_a_cycle_is_a_400_naming_it_and_nothing_is_written(supervisor_api):
    blueprints = [
        {"key": "a", "title": "A", "task_type": "t", "depends_on": ["b"]},
        {"key": "b", "title": "B", "task_type": "t", "depends_on": ["a"]},
    ]
    body = assert_envelope(create(supervisor_api, blueprints=blueprints), 400, "DEPENDENCY_CYCLE")
    assert body["details"]["cycle"] in (["a", "b", "a"], ["b", "a", "b"])
    assert not PlanTemplate.objects.exists()


def test_an_unknown_dependency_and_an_unknown_field_are_400(supervisor_api):
    unknown = [{"key": "a", "title": "A", "task_type": "t", "depends_on": ["ghost"]}]
    assert_envelope(create(supervisor_api, blueprints=unknown), 400, "VALIDATION_ERROR")
    extra = [{"key": "a", "title": "A", "task_type": "t", "colour": "red"}]
    assert_envelope(create(supervisor_api, blueprints=extra), 400, "VALIDATION_ERROR")
    too_many = [{"key": f"k{n}", "title": "T", "task_type": "t"} for n in range(101)]
    assert_envelope(create(supervisor_api, blueprints=too_many), 400, "VALIDATION_ERROR")


def test_admins_name_the_agency_agents_and_clients_may_not_create(admin_api, agent_api, client_api, agency):
    assert_envelope(create(admin_api), 400, "VALIDATION_ERROR")
    assert create(admin_api, agency=str(agency.pk)).status_code == 201
    assert_envelope(create(agent_api), 403, "PERMISSION_DENIED")
    assert_envelope(create(client_api), 403, "PERMISSION_DENIED")


def test_a_supervisor_of_another_agency_neither_sees_nor_changes_nor_uses_it(
    supervisor_api, other_supervisor_api, other_agent, other_client, agency, api_for
):
    template_id = create(supervisor_api).json()["id"]
    assert other_supervisor_api.get(URL).json()["count"] == 0
    assert_envelope(other_supervisor_api.get(f"{URL}/{template_id}"), 404, "NOT_FOUND")
    patch = other_supervisor_api.patch(f"{URL}/{template_id}", {"name": "Mine now"}, format="json")
    assert_envelope(patch, 404, "NOT_FOUND")
    version = other_supervisor_api.post(
        f"{URL}/{template_id}/versions", {"blueprints": DIAMOND}, format="json"
    )
    assert_envelope(version, 404, "NOT_FOUND")
    migrate = other_supervisor_api.post(
        f"{URL}/{template_id}/migrations", {"from_version": 1, "to_version": 2}, format="json"
    )
    assert_envelope(migrate, 404, "NOT_FOUND")
    # Nor can they make a plan of it for their own client.
    plan = api_for(other_agent).post(
        "/api/workflow/action-plans", {"client": other_client.pk, "template": template_id}, format="json"
    )
    assert_envelope(plan, 404, "NOT_FOUND")
    # Naming the other agency on create is refused too.
    assert_envelope(create(other_supervisor_api, agency=str(agency.pk)), 403, "PERMISSION_DENIED")


def test_agents_read_their_agencys_templates_clients_may_not(supervisor_api, agent_api, client_api):
    template_id = create(supervisor_api).json()["id"]
    assert agent_api.get(f"{URL}/{template_id}").status_code == 200
    assert agent_api.get(URL, {"search": "housing"}).json()["count"] == 1
    assert_envelope(client_api.get(URL), 403, "PERMISSION_DENIED")
    patch = agent_api.patch(f"{URL}/{template_id}", {"name": "x"}, format="json")
    assert_envelope(patch, 403, "PERMISSION_DENIED")


def test_an_unused_version_changes_in_place_a_used_one_is_409(supervisor_api, client_user):
    template_id = create(supervisor_api).json()["id"]
    changed = supervisor_api.patch(
        f"{URL}/{template_id}", {"blueprints": DIAMOND[:2], "name": "Short pathway"}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["latest_version"] == 1
    assert len(changed.json()["version"]["blueprints"]) == 2
    assert AuditEntry.objects.filter(action="plan_template.updated").count() == 1

    made = supervisor_api.post(
        "/api/workflow/action-plans", {"client": client_user.pk, "template": template_id}, format="json"
    )
    assert made.status_code == 201, made.json()
    assert supervisor_api.get(f"{URL}/{template_id}").json()["version"]["in_use"] is True
    refused = supervisor_api.patch(f"{URL}/{template_id}", {"blueprints": DIAMOND}, format="json")
    assert_envelope(refused, 409, "TEMPLATE_VERSION_IN_USE")
    # The name is not versioned: it may still change.
    assert supervisor_api.patch(f"{URL}/{template_id}", {"name": "Renamed"}, format="json").status_code == 200

    new = supervisor_api.post(f"{URL}/{template_id}/versions", {"blueprints": DIAMOND}, format="json")
    assert new.status_code == 201, new.json()
    assert new.json()["latest_version"] == 2
    assert new.json()["version"]["in_use"] is False
    assert AuditEntry.objects.filter(action="plan_template.version_created").count() == 1


def test_bad_ids_are_404(supervisor_api):
    for template_id in ("nope", "0", str(2**64)):
        assert_envelope(supervisor_api.get(f"{URL}/{template_id}"), 404, "NOT_FOUND")


def test_approvers_must_serve_the_agency(supervisor_api, supervisor, other_agent):
    ok = create(supervisor_api, requires_approval={"count": 1, "approvers": [supervisor.pk]})
    assert ok.status_code == 201
    bad = create(supervisor_api, requires_approval={"count": 1, "approvers": [other_agent.pk]})
    assert_envelope(bad, 400, "VALIDATION_ERROR")
    assert str(other_agent.pk) in bad.json()["details"]["requires_approval"][0]


VALIDATOR_REFUSALS = [
    {"count": 1, "approvers": [1], "role": "admin"},
    {"count": 2, "approvers": [1]},
    {"count": 1, "approvers": [1, 1]},
]


@pytest.mark.parametrize(
    "policy",
    [
        *VALIDATOR_REFUSALS,
        [1, 2],
        {"count": 0, "role": "supervisor"},
        {"count": 1, "role": "client"},
        {"count": True, "role": "admin"},
        {"count": 1, "role": "admin", "extra": 1},
    ],
)
def test_a_template_policy_is_refused_as_a_plan_policy_is(policy, supervisor_api, make_plan):
    """One validator (``approval_policy_validate``): the template's refusal says what the plan's says,
    under the template's field name."""
    template = create(supervisor_api, requires_approval=policy)
    assert_envelope(template, 400, "VALIDATION_ERROR")
    plan = supervisor_api.patch(
        f"/api/workflow/action-plans/{make_plan().pk}", {"approval_policy": policy}, format="json"
    )
    assert_envelope(plan, 400, "VALIDATION_ERROR")
    assert list(template.json()["details"]) == ["requires_approval"]
    assert list(plan.json()["details"]) == ["approval_policy"]
    if policy in VALIDATOR_REFUSALS:  # past the plan serializer's shape checks: the validator's words
        assert template.json()["details"]["requires_approval"] == plan.json()["details"]["approval_policy"]


def test_a_template_may_ask_any_of_the_agencys_staff(supervisor_api):
    made = create(supervisor_api, requires_approval={"count": 2, "role": "agency"})
    assert made.status_code == 201, made.content
    assert made.json()["version"]["requires_approval"] == {"count": 2, "role": "agency"}

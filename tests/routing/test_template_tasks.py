"""Tasks of a plan made from a template are routed like any task created without an assignee: the rules
apply in the creating transaction (waiting tasks too), the answer shows the assignee, the load counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from careplans.services.templates import plan_template_create
from outbox.models import OutboxEvent
from routing.load import load_recount, load_stored
from workflow.models import Task

pytestmark = pytest.mark.django_db

BLUEPRINTS = [
    {"key": "intake", "title": "Intake", "task_type": "intake", "service_area": "housing"},
    {"key": "review", "title": "Review", "task_type": "review", "depends_on": ["intake"]},
    {
        "key": "visit",
        "title": "Home visit",
        "task_type": "intake",
        "service_area": "housing",
        "depends_on": ["intake"],
    },
]


def _instantiate(api, supervisor, agency, client_user):
    template = plan_template_create(
        actor=supervisor, agency=agency, name="Intake path", blueprints=BLUEPRINTS
    )
    response = api.post(
        "/api/workflow/action-plans", {"client": client_user.pk, "template": template.pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_the_tasks_a_rule_matches_are_routed_when_the_plan_is_made(
    team, make_rule, agent_api, supervisor, agency, client_user
):
    make_rule(strategy="round_robin", match_task_types=["intake"], candidates=team[:2], client_affinity=False)
    body = _instantiate(agent_api, supervisor, agency, client_user)
    by_title = {task["title"]: task for task in body["tasks"]}
    stored = {task.title: task for task in Task.objects.filter(action_plan_id=body["id"])}
    # Both intake-type tasks (the waiting visit too) go round the two candidates; the review matches no rule.
    assert {stored["Intake"].assignee_id, stored["Home visit"].assignee_id} == {team[0].pk, team[1].pk}
    assert stored["Review"].assignee_id is None
    for title, task in stored.items():  # the answer was rendered from the rows as they are now
        assert by_title[title]["assignee"] == task.assignee_id, by_title[title]
    assigned = OutboxEvent.objects.get(aggregate_id=stored["Intake"].pk, event_type="TaskAssigned")
    assert assigned.payload["routing"]["strategy"] == "round_robin"
    created = OutboxEvent.objects.get(aggregate_id=stored["Intake"].pk, event_type="TaskCreated")
    assert created.sequence < assigned.sequence
    assert created.correlation_id == assigned.correlation_id
    assert load_stored() == load_recount()


def test_an_agency_without_rules_pays_one_statement_for_routing(agent_api, supervisor, agency, client_user):
    with CaptureQueriesContext(connection) as captured:
        body = _instantiate(agent_api, supervisor, agency, client_user)
    assert all(task["assignee"] is None for task in body["tasks"])
    assert sum("routing_routingrule" in query["sql"] for query in captured.captured_queries) == 1

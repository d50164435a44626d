"""The small field rules have one home (``workflow.validation``): every service, shape and model uses it."""

import pytest

from polaris.errors import ValidationFailed
from tests.support.api import assert_envelope, bearer_client
from workflow.models import ActionPlan, Task
from workflow.services.action_plans import action_plan_create
from workflow.services.tasks import task_create
from workflow.validation import TITLE_MAX_LENGTH

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("create", [task_create, action_plan_create], ids=["task", "plan"])
def test_a_client_not_linked_to_the_agency_is_refused_the_same_way_by_tasks_and_plans(
    create, admin_user, other_client, agency
):
    extra = {"task_type": "intake"} if create is task_create else {}
    with pytest.raises(ValidationFailed) as caught:
        create(actor=admin_user, title="Help", client=other_client, agency=agency, **extra)
    assert caught.value.details == {"client": ["This client is not served by this agency."]}


@pytest.mark.parametrize("create", [task_create, action_plan_create], ids=["task", "plan"])
def test_a_non_client_is_refused_the_same_way_by_tasks_and_plans(create, admin_user, agent, agency):
    extra = {"task_type": "intake"} if create is task_create else {}
    with pytest.raises(ValidationFailed) as caught:
        create(actor=admin_user, title="Help", client=agent, agency=agency, **extra)
    assert caught.value.details == {"client": ["Must be a client user."]}


def test_the_models_columns_hold_the_title_length():
    assert Task._meta.get_field("title").max_length == TITLE_MAX_LENGTH
    assert ActionPlan._meta.get_field("title").max_length == TITLE_MAX_LENGTH


def test_every_title_shape_takes_the_longest_title_and_refuses_one_more(
    agent, client_user, make_task, make_plan
):
    api = bearer_client(agent)
    task, plan = make_task(), make_plan()
    writes = [
        ("post", "/api/workflow/tasks", {"task_type": "intake", "client": client_user.pk}, 201),
        ("patch", f"/api/workflow/tasks/{task.pk}", {}, 200),
        ("post", "/api/workflow/action-plans", {"client": client_user.pk}, 201),
        ("patch", f"/api/workflow/action-plans/{plan.pk}", {}, 200),
    ]
    for method, url, body, status in writes:
        send = getattr(api, method)
        longest = send(url, {**body, "title": "t" * TITLE_MAX_LENGTH}, format="json")
        assert longest.status_code == status, (url, longest.content[:300])
        too_long = send(url, {**body, "title": "t" * (TITLE_MAX_LENGTH + 1)}, format="json")
        assert "title" in assert_envelope(too_long, 400, "VALIDATION_ERROR")["details"], url

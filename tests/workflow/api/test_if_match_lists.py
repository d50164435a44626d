"""``If-Match`` with a list of ETags (valid HTTP, RFC 9110 §13.1.1): the change goes ahead when the task
is at any listed version; ``*`` (alone) matches any; a malformed header is a 400 naming it (issue #28)."""

import pytest

from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"


@pytest.mark.parametrize("header", ['"1", "3"', '"3","1"', 'W/"1", "7"', '"0" , W/"1"', " *"])
def test_a_list_matches_when_any_listed_etag_matches(agent_api, make_task, header):
    task = make_task()
    response = agent_api.patch(f"{TASKS}/{task.pk}", {"title": "A"}, format="json", HTTP_IF_MATCH=header)
    assert response.status_code == 200, response.json()
    assert response["ETag"] == '"2"'


def test_a_list_none_of_which_matches_is_a_412_naming_them(agent_api, make_task):
    task = make_task()
    response = agent_api.patch(f"{TASKS}/{task.pk}", {"title": "A"}, format="json", HTTP_IF_MATCH='"2", "3"')
    body = assert_envelope(response, 412, "PRECONDITION_FAILED")
    assert body["details"] == {"expected_version": [2, 3], "current_version": 1}
    moved = agent_api.post(
        f"{TASKS}/{task.pk}/transition",
        {"target_state": "in_progress"},
        format="json",
        HTTP_IF_MATCH='"4", "1"',
    )
    assert moved.status_code == 200


@pytest.mark.parametrize(
    "header",
    ['"1", yesterday', '"1",', ",", '"1", "x"', '"5", *', "1", '"1"\t, "2"', ", ".join(['"1"'] * 40)],
)
def test_a_malformed_list_is_a_400(agent_api, make_task, header):
    task = make_task()
    response = agent_api.patch(f"{TASKS}/{task.pk}", {"title": "A"}, format="json", HTTP_IF_MATCH=header)
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "If-Match" in body["details"]

"""A list page costs the same however many rows match: page_size + 1 rows read, a count bounded by the
limit (PostgreSQL's estimate beyond), and the same links and past-the-end answers as before."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"


@pytest.fixture
def seven_tasks(make_task):
    return [make_task(title=f"Task {n}") for n in range(7)]


def counts(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


def test_a_first_page_holding_everything_runs_no_count(agent_api, seven_tasks):
    with CaptureQueriesContext(connection) as captured:
        body = agent_api.get(TASKS, {"page_size": 10}).json()
    assert body["count"] == 7
    assert body["next"] is None
    assert body["previous"] is None
    assert not counts(captured)


def test_pages_links_and_the_last_page(agent_api, seven_tasks):
    first = agent_api.get(TASKS, {"page_size": 3}).json()
    assert first["count"] == 7
    assert first["previous"] is None
    assert "page=2" in first["next"]
    second = agent_api.get(TASKS, {"page_size": 3, "page": 2}).json()
    assert second["count"] == 7
    assert "page=3" in second["next"]
    assert "page=" not in second["previous"]
    last = agent_api.get(TASKS, {"page_size": 3, "page": 3}).json()
    assert last["count"] == 7
    assert last["next"] is None
    assert "page=2" in last["previous"]
    assert len(last["results"]) == 1
    ids = [row["id"] for page in (first, second, last) for row in page["results"]]
    assert len(set(ids)) == 7


def test_a_page_past_the_end_is_empty_and_points_at_the_last(agent_api, seven_tasks):
    with CaptureQueriesContext(connection) as captured:
        past = agent_api.get(TASKS, {"page_size": 3, "page": 9}).json()
    assert past == {"count": 7, "next": None, "previous": past["previous"], "results": []}
    assert "page=3" in past["previous"]
    assert not any("OFFSET" in q["sql"] for q in captured.captured_queries)  # nothing read at offset 24
    huge = agent_api.get(TASKS, {"page": str(2**63 - 1)})
    assert huge.status_code == 200
    assert huge.json()["results"] == []


def test_beyond_the_exact_limit_the_count_is_bounded_and_estimated(agent_api, seven_tasks, settings):
    from polaris.api import pagination

    pagination._estimates.clear()
    settings.API_EXACT_COUNT_LIMIT = 4
    with CaptureQueriesContext(connection) as captured:
        body = agent_api.get(TASKS, {"page_size": 2}).json()
    assert body["count"] >= 5  # the estimate, never below what is known to exist
    assert "page=2" in body["next"]
    (count,) = counts(captured)
    assert "LIMIT 5" in count  # counted no further than the limit
    assert any(q["sql"].startswith("EXPLAIN") for q in captured.captured_queries)
    # The estimate is kept a while: the same list's next page runs no count at all.
    with CaptureQueriesContext(connection) as captured:
        agent_api.get(TASKS, {"page_size": 2, "page": 2})
    assert not counts(captured)
    assert not any(q["sql"].startswith("EXPLAIN") for q in captured.captured_queries)
    # Paging on past the limit still reads every row once and ends with next = null.
    seen, page = [], 1
    while True:
        body = agent_api.get(TASKS, {"page_size": 2, "page": page}).json()
        seen += [row["id"] for row in body["results"]]
        if body["next"] is None:
            break
        page += 1
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize("query", ["", "page=2", "page_size=20&page=3", "page=0", "page=x", "page=2&page=3"])
def test_paging_only_query_strings_validate_as_the_serializer_does(query):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from polaris.api.query_params import query_params_parse
    from polaris.errors import ValidationFailed
    from workflow.api.filters import TaskListQuerySerializer

    request = Request(APIRequestFactory().get(f"/?{query}"))
    serializer = TaskListQuerySerializer(data=request.query_params)
    repeated = any(len(values) > 1 for _, values in request.query_params.lists())
    if serializer.is_valid() and not repeated:  # a repeated parameter is refused, whatever DRF keeps
        expected = (dict(serializer.validated_data), {})
        assert query_params_parse(request=request, serializer_class=TaskListQuerySerializer) == expected
    else:
        with pytest.raises(ValidationFailed):
            query_params_parse(request=request, serializer_class=TaskListQuerySerializer)

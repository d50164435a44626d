"""What a search reads: one bounded read through the indexes gives the matches' count (and, when they are
few, their ids: the page reads them by id); the paginator counts no further. A search's ``count`` is
exact up to ``workflow.search.NARROW_MATCHES`` and PostgreSQL's estimate beyond, whatever
``API_EXACT_COUNT_LIMIT`` is; ``next`` is always exact. Terms matched by a client's name are expanded
into arms (``workflow.search.search_q``): every way a task can match still finds it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db
TASKS = "/api/workflow/tasks"


def statements(captured, text: str) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if text in q["sql"].upper()]


def ids(api, **params) -> set[str]:
    response = api.get(TASKS, params)
    assert response.status_code == 200, response.json()
    return {item["id"] for item in response.json()["results"]}


@pytest.fixture
def named_tasks(make_task, agency):
    """Ana López and Bea Okafor; their tasks' words overlap their names in every way a search can meet."""
    ana = ClientFactory(username="c-ana", first_name="Ana", last_name="Lopez", agency=agency)
    bea = ClientFactory(username="c-bea", first_name="Bea", last_name="Okafor", agency=agency)
    tasks = {
        "ana-eviction": make_task(title="Eviction notice", description="", client=ana),
        "bea-eviction-lopez": make_task(
            title="Eviction hearing", description="Neighbour Lopez called", client=bea
        ),
        "ana-visit": make_task(title="Home visit", description="", client=ana),
        "bea-eviction": make_task(title="Eviction notice", description="", client=bea),
        "ana-okafor": make_task(title="Letter", description="Okafor family referral", client=ana),
    }
    return {name: str(task.pk) for name, task in tasks.items()}


@pytest.mark.parametrize("inline", [1000, 0])  # client ids listed in the query, or a subquery for them
@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("eviction lopez", {"ana-eviction", "bea-eviction-lopez"}),  # the name by client, or in the text
        ("ana lopez", {"ana-eviction", "ana-visit", "ana-okafor"}),  # both names of one client
        ("lopez okafor", {"bea-eviction-lopez", "ana-okafor"}),  # one name by client, the other in the text
        ("bea lopez", {"bea-eviction-lopez"}),  # no client is both: the text must hold one of them
        ("evic okaf", {"bea-eviction", "bea-eviction-lopez"}),
        ("visit okafor", set()),
    ],
)
def test_every_way_a_term_can_match_is_found(agent_api, named_tasks, monkeypatch, inline, search, expected):
    monkeypatch.setattr("workflow.search.CLIENT_IDS_INLINE", inline)
    assert ids(agent_api, search=search) == {named_tasks[name] for name in expected}


def test_few_matches_are_read_once_and_counted_once(agent_api, named_tasks):
    with CaptureQueriesContext(connection) as captured:
        body = agent_api.get(TASKS, {"search": "eviction", "page_size": 2}).json()
    assert body["count"] == 3  # exact
    assert "page=2" in body["next"]
    searched = statements(captured, "SEARCH_VECTOR")  # the tasks' text (the clients' names are one more)
    assert len(searched) == 1  # the bounded read; the page reads the matches by id
    assert "COUNT(" in searched[0].upper()
    assert len(statements(captured, "COUNT(")) == 1  # the paginator does not count again
    assert not statements(captured, "EXPLAIN")
    (page,) = [sql for sql in statements(captured, "LIMIT 3") if "COUNT(" not in sql.upper()]
    assert '"workflow_task"."id" = ANY' in page


def test_a_search_counts_exactly_only_up_to_narrow_matches(agent_api, make_task, monkeypatch, settings):
    from polaris.api import pagination

    pagination._estimates.clear()
    monkeypatch.setattr("workflow.search.NARROW_MATCHES", 3)
    settings.API_EXACT_COUNT_LIMIT = 10_000  # other lists' rule: not a search's
    made = {str(make_task(title=f"Eviction appeal {n}").pk) for n in range(5)}
    make_task(title="Home visit")
    with CaptureQueriesContext(connection) as captured:
        body = agent_api.get(TASKS, {"search": "eviction", "page_size": 2}).json()
    assert body["count"] >= 4  # PostgreSQL's estimate, never below what the search has counted
    assert "page=2" in body["next"]
    assert len(statements(captured, "COUNT(")) == 1  # the search's bounded read, not the paginator's
    assert len(statements(captured, "EXPLAIN")) == 1
    # Paging on reads every match once and ends with next = null (a walk of the order, testing each row).
    seen, page = [], 1
    while True:
        body = agent_api.get(TASKS, {"search": "eviction", "page_size": 2, "page": page}).json()
        seen += [row["id"] for row in body["results"]]
        if body["next"] is None:
            break
        page += 1
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == made
    # A page past an estimated count is not answered empty without reading: it reads, and finds nothing.
    past = agent_api.get(TASKS, {"search": "eviction", "page_size": 2, "page": 9}).json()
    assert past["results"] == []
    assert past["next"] is None


def test_the_search_read_plans_random_reads_as_cached_and_then_no_more(admin_user, named_tasks):
    """``workflow.search.SEARCH_RANDOM_PAGE_COST`` holds for the search's own read only: the statements
    after it, in the same transaction too, plan with the server's setting (never raised by it either)."""
    from django.db import transaction

    from workflow.selectors import task_list

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW random_page_cost")
            return cursor.fetchone()[0]

    with transaction.atomic():
        before = setting()
        with CaptureQueriesContext(connection) as captured:
            assert len(task_list(user=admin_user, filters={"search": "eviction"})) == 3
        assert setting() == before
    assert statements(captured, "SET_CONFIG('RANDOM_PAGE_COST'")
    with connection.cursor() as cursor:
        cursor.execute("SET random_page_cost = 0.5")
    try:
        task_list(user=admin_user, filters={"search": "eviction"})
        assert setting() == "0.5"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET random_page_cost")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_setting_ends_with_the_search_read(admin_user, named_tasks):
    from workflow.selectors import task_list

    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        before = cursor.fetchone()[0]
    assert len(task_list(user=admin_user, filters={"search": "eviction"})) == 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == before

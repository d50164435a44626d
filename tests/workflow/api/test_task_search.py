"""Finding work on ``GET /api/workflow/tasks``: ``search=`` (title, description, client name; indexed), comma
lists, ``assignee=none|me``, ``overdue``, ``due_before``/``due_after``, over a seeded set; bad values and
repeated parameters are 400s naming the parameter."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import ClientFactory
from tests.support.api import assert_envelope
from workflow.models import Task
from workflow.services.tasks import task_transition, task_update

pytestmark = pytest.mark.django_db
TASKS = "/api/workflow/tasks"
NOW = timezone.now()


@pytest.fixture
def seeded(make_task, agent, agency, supervisor):
    """Two named clients and six tasks with distinct words, states, priorities, assignees and due times."""
    maria = ClientFactory(username="c-maria", first_name="María", last_name="Martínez", agency=agency)
    jose = ClientFactory(username="c-jose", first_name="José", last_name="Lopez", agency=agency)
    tasks = {
        "eviction": make_task(
            title="Eviction notice review",
            description="Landlord sent a letter about rent arrears.",
            client=maria,
            priority="urgent",
            due_at=NOW - timedelta(days=1),
        ),
        "visit": make_task(
            title="Home visit",
            description="Check the heating and the damp in the bedroom.",
            client=jose,
            assignee=None,
            due_at=NOW + timedelta(days=2),
        ),
        "benefit": make_task(
            title="Housing benefit application",
            description="Forms for the council; interpreter needed.",
            client=jose,
            priority="high",
            assignee=supervisor,
            due_at=NOW + timedelta(days=10),
        ),
        "school": make_task(title="School enrolment", description="", client=maria, priority="low"),
        "done": make_task(title="Eviction appeal filed", client=jose, due_at=NOW - timedelta(days=3)),
        "blocked": make_task(title="Debt advice referral", client=maria, due_at=NOW - timedelta(hours=1)),
    }
    task_transition(task_id=tasks["done"].pk, target_state="in_progress", actor=agent)
    task_transition(task_id=tasks["done"].pk, target_state="completed", actor=agent)
    task_transition(task_id=tasks["blocked"].pk, target_state="blocked", actor=agent, reason="waiting")
    return {name: str(task.pk) for name, task in tasks.items()}


def ids(api, **params):
    response = api.get(TASKS, params)
    assert response.status_code == 200, response.json()
    return {item["id"] for item in response.json()["results"]}


def named(seeded, *names):
    return {seeded[name] for name in names}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("eviction", ("eviction", "done")),  # a word of the title
        ("EVICTION", ("eviction", "done")),  # case-insensitive
        ("evic", ("eviction", "done")),  # the start of a word
        ("landlord", ("eviction",)),  # a word of the description
        ("interpret", ("benefit",)),
        ("Martínez", ("eviction", "school", "blocked")),  # the client's last name
        ("mart", ("eviction", "school", "blocked")),  # part of it
        ("maría", ("eviction", "school", "blocked")),  # the first name
        ("josé lopez", ("visit", "benefit", "done")),  # first and last: each term must match
        ("eviction lopez", ("done",)),  # a word and a name
        ("eviction notice", ("eviction",)),
        ("heating bedroom", ("visit",)),
        ("nothing-like-this", ()),
        ("o'neil (xy)&zz |qq :*ab", ()),  # query syntax is text, never an error
        ("&& !!", ()),  # no word at all: nothing to find
        ("eviction !!", ("eviction", "done")),  # a term without a word narrows nothing
    ],
)
def test_search_finds_words_word_starts_and_client_names(agent_api, seeded, search, expected):
    assert ids(agent_api, search=search) == named(seeded, *expected)


def test_search_combines_with_the_other_filters(agent_api, seeded, agent):
    assert ids(agent_api, search="eviction", state="new") == named(seeded, "eviction")
    assert ids(agent_api, search="mart", priority="urgent,low") == named(seeded, "eviction", "school")
    assert ids(agent_api, search="lopez", assignee="none") == named(seeded, "visit")
    assert ids(agent_api, search="mart", overdue="true") == named(seeded, "eviction", "blocked")
    response = agent_api.get(TASKS, {"search": "mart", "page_size": 2})
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 2


def test_staff_notes_are_never_searched(agent_api, client_api, seeded, agent):
    task_update(task_id=seeded["school"], actor=agent, changes={"staff_notes": "zebracrossing confidential"})
    assert ids(agent_api, search="zebracrossing") == set()
    assert ids(client_api, search="zebracrossing") == set()


def test_a_client_searches_only_its_own_tasks(api_for, seeded, make_task):
    maria = Task.objects.get(pk=seeded["eviction"]).client
    assert ids(api_for(maria), search="eviction") == named(seeded, "eviction")
    assert ids(api_for(maria), search="lopez") == set()  # another client's name finds nothing


def test_another_agency_finds_nothing(other_agent_api, seeded):
    assert ids(other_agent_api, search="eviction") == set()
    assert ids(other_agent_api, search="mart") == set()


def test_comma_lists_of_states_and_priorities(agent_api, seeded):
    assert ids(agent_api, state="new,blocked") == named(
        seeded, "eviction", "visit", "benefit", "school", "blocked"
    )
    assert ids(agent_api, state="completed") == named(seeded, "done")
    assert ids(agent_api, state="completed,completed") == named(seeded, "done")
    assert ids(agent_api, priority="urgent,high") == named(seeded, "eviction", "benefit")


def test_assignee_none_me_and_an_id(api_for, agent_api, seeded, agent, supervisor):
    assert ids(agent_api, assignee="none") == named(seeded, "visit")
    mine = named(seeded, "eviction", "school", "done", "blocked")
    assert ids(agent_api, assignee="me") == mine
    assert ids(agent_api, assignee=str(agent.pk)) == mine
    assert ids(api_for(supervisor), assignee="me") == named(seeded, "benefit")


def test_overdue_and_due_ranges(agent_api, seeded):
    # Overdue: open and past due ("done" is past due but completed).
    assert ids(agent_api, overdue="true") == named(seeded, "eviction", "blocked")
    assert ids(agent_api, overdue="false") == named(seeded, "visit", "benefit", "school", "done")
    assert ids(agent_api, due_before=(NOW + timedelta(days=3)).isoformat()) == named(
        seeded, "eviction", "visit", "done", "blocked"
    )
    assert ids(agent_api, due_after=NOW.isoformat()) == named(seeded, "visit", "benefit")
    assert ids(
        agent_api,
        due_after=(NOW + timedelta(days=1)).isoformat(),
        due_before=(NOW + timedelta(days=5)).isoformat(),
    ) == named(seeded, "visit")


@pytest.mark.parametrize(
    ("query", "field", "named_in_message"),
    [
        ("state=new,bogus", "state", "bogus"),
        ("state=new,,blocked", "state", None),
        ("priority=urgent,whenever", "priority", "whenever"),
        ("assignee=null", "assignee", None),
        ("assignee=someone", "assignee", None),
        ("assignee=-3", "assignee", None),
        ("overdue=maybe", "overdue", None),
        ("due_before=tomorrow", "due_before", None),
        ("due_after=2026-13-45T00:00:00Z", "due_after", None),
        ("search=" + "x" * 101, "search", None),
        ("search=a", "search", None),
        ("search=a+b+c", "search", None),
        ("search=eviction+x", "search", "not x"),
        ("search=one+two+three+four+five+six", "search", None),
        ("state=new&state=blocked", "state", "2 times"),
        ("search=eviction&search=visit", "search", "2 times"),
        ("assignee=me&assignee=none", "assignee", None),
    ],
)
def test_bad_values_and_repeated_parameters_are_400_naming_them(
    agent_api, seeded, query, field, named_in_message
):
    body = assert_envelope(agent_api.get(f"{TASKS}?{query}"), 400, "VALIDATION_ERROR")
    assert field in body["details"], body
    if named_in_message:
        assert named_in_message in " ".join(body["details"][field]), body


def test_the_list_of_states_is_bounded(agent_api, seeded):
    every_state_twice = ",".join(["new", "in_progress", "blocked", "completed", "cancelled"] * 2)
    body = assert_envelope(agent_api.get(TASKS, {"state": every_state_twice}), 400, "VALIDATION_ERROR")
    assert "state" in body["details"]


def test_bulk_filters_take_the_new_filters(agent_api, seeded):
    response = agent_api.post(
        f"{TASKS}/bulk",
        {
            "action": "assign",
            "filter": {"search": "mart", "state": "new,blocked", "overdue": True},
            "params": {"assignee": None},
            "dry_run": True,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert {item["id"] for item in response.json()["results"]} == named(seeded, "eviction", "blocked")
    bad = agent_api.post(
        f"{TASKS}/bulk",
        {"action": "assign", "filter": {"state": "new,bogus"}, "params": {"assignee": None}, "dry_run": True},
        format="json",
    )
    assert "bogus" in " ".join(assert_envelope(bad, 400, "VALIDATION_ERROR")["details"]["filter"]["state"])


def test_search_reads_the_indexes(seeded, admin_user):
    """The search's read (its bounded count, ``search_matches``) uses the tasks' text index, the clients'
    name index and the tasks' client index (a word and a client's name: ``search_q``'s arms)."""
    from workflow.search import clients_named, tasks_search, term_query
    from workflow.selectors import task_queryset

    tasks = tasks_search(task_queryset(user=admin_user), "eviction lopez")
    query = term_query("mart")
    assert query is not None
    with connection.cursor() as cursor:
        # Only bitmap scans left to the planner: it must find an index whose condition it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        task_plan = tasks.explain()
        name_plan = clients_named(query).explain()
    assert "task_search_idx" in task_plan
    assert "task_client_created_idx" in task_plan
    assert "accounts_user_name_search_idx" in name_plan

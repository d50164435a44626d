"""The event feed API: cursor pages in one total order, filters, scope, bad input; and the trap an id-
or xid-ordered feed falls into (a transaction that took its id first commits its event last)."""

import threading
import uuid

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from outbox.feed import CursorAhead, FeedScope, feed_page
from outbox.feed_cursor import cursor_decode, cursor_encode
from outbox.models import FeedEntry, OutboxEvent
from workflow.services.tasks import task_create

pytestmark = pytest.mark.django_db
URL = "/api/workflow/events"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def follow(client, **params) -> list[dict]:
    """Every event, page by page, following ``next``."""
    events, after = [], {}
    while True:
        response = client.get(URL, {**after, **params})
        assert response.status_code == 200, response.data
        events += response.json()["events"]
        if not response.json()["has_more"]:
            return events
        after = {"after": response.json()["next"]}


def test_pages_follow_one_order_and_end_with_a_cursor_to_wait_on(admin_user, make_task):
    tasks = [make_task(title=f"T{i}") for i in range(7)]
    client = api(admin_user)
    first = client.get(URL, {"limit": 3})
    assert first.status_code == 200
    assert (len(first.json()["events"]), first.json()["has_more"]) == (3, True)
    events = follow(client, limit=3)
    assert [e["aggregate_id"] for e in events] == [str(t.pk) for t in tasks]
    # The global position stays inside the opaque cursor: an event shows none.
    assert not any("position" in e for e in events)
    assert events[0]["event_type"] == "TaskCreated"
    assert events[0]["payload"]["title"] == "T0"
    last = client.get(URL, {"limit": 7}).json()["next"]
    tail = client.get(URL, {"after": last})
    assert (tail.json()["events"], tail.json()["has_more"]) == ([], False)
    assert cursor_decode(tail.json()["next"]) == cursor_decode(last) == 7


def test_filters_by_event_type_and_aggregate_type(admin_user, make_task, make_plan):
    make_task()
    make_plan()
    client = api(admin_user)
    assert {e["aggregate_type"] for e in follow(client, aggregate_type="action_plan")} == {"action_plan"}
    assert {e["event_type"] for e in follow(client, event_type="TaskCreated")} == {"TaskCreated"}
    both = follow(client, event_type="TaskCreated,ActionPlanCreated")
    assert {e["event_type"] for e in both} == {"TaskCreated", "ActionPlanCreated"}


def test_scope_admin_all_agent_their_agency_client_their_own_tasks(
    admin_user, agent, other_agent, client_user, other_client, other_agency, make_task
):
    mine = make_task(title="mine")
    theirs = task_create(
        actor=other_agent,
        title="theirs",
        task_type="intake",
        service_area="housing",
        client=other_client,
        agency=other_agency,
    )
    assert {e["aggregate_id"] for e in follow(api(admin_user))} == {str(mine.pk), str(theirs.pk)}
    assert {e["aggregate_id"] for e in follow(api(agent))} == {str(mine.pk)}
    assert {e["aggregate_id"] for e in follow(api(other_agent))} == {str(theirs.pk)}
    assert {e["aggregate_id"] for e in follow(api(client_user))} == {str(mine.pk)}
    assert {e["aggregate_id"] for e in follow(api(other_client))} == {str(theirs.pk)}


def test_a_sparse_filter_still_moves_the_cursor(admin_user, make_task, settings, monkeypatch):
    """A page examines a bounded window of positions; when none match, ``next`` still advances."""
    monkeypatch.setattr("outbox.feed.SCAN_WINDOW", 2)
    for i in range(5):
        make_task(title=f"T{i}")
    response = api(admin_user).get(URL, {"event_type": "ActionPlanCreated"})
    assert (
        response.json()["events"],
        cursor_decode(response.json()["next"]),
        response.json()["has_more"],
    ) == (
        [],
        2,
        True,
    )
    assert follow(api(admin_user), event_type="ActionPlanCreated") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "x" * 65}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"wait": "-1"}, "wait"),
        ({"wait": "9999"}, "wait"),
        ({"event_type": "NoSuchEvent"}, "event_type"),
        ({"aggregate_type": "foo"}, "aggregate_type"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_query_strings_are_400(admin_user, params, field):
    response = api(admin_user).get(URL, params)
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert field in response.json()["details"]


def test_anonymous_is_401():
    assert APIClient().get(URL).status_code == 401


def _event(aggregate_id, sequence: int) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=aggregate_id,
        sequence=sequence,
        correlation_id="trap",
    )


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_took_its_id_first_and_committed_last_is_neither_skipped_nor_reordered():
    """T2 writes something (so gets the lower transaction id), then T1 writes event 1 of an aggregate and
    commits, then T2 writes event 2 of it and commits. A feed ordered by id or by transaction id would
    put event 2 before event 1 — or, read between the commits, skip T2's first event for good."""
    aggregate = uuid.uuid4()
    t2_started, t1_committed = threading.Event(), threading.Event()
    seen_between: list[dict] = []

    def t2():
        try:
            with transaction.atomic():
                _event(uuid.uuid4(), 1)  # takes T2's transaction id now
                t2_started.set()
                assert t1_committed.wait(10)
                _event(aggregate, 2)
        finally:
            connection.close()

    writer = threading.Thread(target=t2)
    writer.start()
    assert t2_started.wait(10)
    with transaction.atomic():
        _event(aggregate, 1)
    page = feed_page(scope=FeedScope())  # read while T2 is still open
    seen_between += page.events
    t1_committed.set()
    writer.join(10)
    rest = feed_page(scope=FeedScope(), after=page.next)
    events = seen_between + rest.events
    assert len(events) == 3 and len({e["id"] for e in events}) == 3  # noqa: PT018
    assert [e["sequence"] for e in events if e["aggregate_id"] == str(aggregate)] == [1, 2]
    assert FeedEntry.objects.count() == 3


def test_a_cursor_beyond_the_smallint_range_works(admin_user):
    """Server-side binding sends small ints as smallint; the cursor arithmetic must not overflow (the
    statement runs: the position is then refused as ahead of the feed, not as a database error)."""
    with pytest.raises(CursorAhead):
        feed_page(scope=FeedScope(), after=30000)


@pytest.mark.parametrize(
    "cursor",
    ["abc", "-1", "0", "30000", "", "A" * 38],
    ids=["junk", "negative", "a-plain-zero", "a-plain-position", "empty", "right-length"],
)
def test_a_cursor_this_server_did_not_issue_is_400_invalid_cursor(admin_user, cursor):
    response = api(admin_user).get(URL, {"after": cursor})
    assert response.status_code == 400
    assert response.json()["error_code"] == ("VALIDATION_ERROR" if cursor == "" else "INVALID_CURSOR")


def test_a_tampered_cursor_is_400_invalid_cursor(admin_user, make_task):
    make_task()
    cursor = api(admin_user).get(URL).json()["next"]
    # Every character (nonce, position, tag; the last one's spare bits too), each changed two ways.
    for index in range(len(cursor)):
        for flipped in [c for c in "AB_-" if c != cursor[index]][:2]:
            tampered = cursor[:index] + flipped + cursor[index + 1 :]
            response = api(admin_user).get(URL, {"after": tampered})
            assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_CURSOR"), tampered


def test_a_cursor_reveals_no_position_and_is_never_the_same_twice(admin_user, make_task):
    make_task()
    first, second = (api(admin_user).get(URL).json()["next"] for _ in range(2))
    assert first != second and cursor_decode(first) == cursor_decode(second) == 1  # noqa: PT018
    assert "1" not in {first, second}


def test_a_cursor_ahead_of_the_feed_is_400_and_moves_nobody(admin_user, make_task):
    make_task()
    response = api(admin_user).get(URL, {"after": cursor_encode(500)})
    assert (response.status_code, response.json()["error_code"]) == (400, "CURSOR_AHEAD")
    assert "after" in response.json()["details"]


def test_the_sync_tier_does_not_wait(admin_user, make_task):
    """wait>0 is the async tier's (polaris.asgi); the sync view answers at once."""
    import time

    started = time.monotonic()
    response = api(admin_user).get(URL, {"wait": 5})
    assert response.status_code == 200 and time.monotonic() - started < 2  # noqa: PT018

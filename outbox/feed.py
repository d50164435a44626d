"""The event feed: every committed event in one total order that a cursor can follow without a gap.

The trap: events get ids and timestamps when written but become visible when their transaction
commits, in another order; a reader that has passed id or time *t* never sees an event written
before *t* that commits after it. So the feed's order is not the write order but a **position**
assigned after commit, in rounds (``feed_sequence``):

1. A round locks the one ``FeedState`` row (rounds run one at a time) and reads, in that statement's
   snapshot, its ``xmin``: every transaction with an id below it has ended.
2. The next statement (a newer snapshot, taken after the lock) gives positions ``head+1, head+2, …`` to
   committed events not yet positioned whose ``(xid, sequence, id)`` — the writing transaction's id
   (``OutboxEvent.xid``, a database default), then the aggregate sequence and the event id — is at
   least the stored watermark.
   Events below the watermark were all positioned by earlier rounds. A round is bounded
   (``ROUND_LIMIT``): it takes the unpositioned events first in that order, plus, when it hit the
   bound, every unpositioned earlier event (lower ``sequence``) of the aggregates it took: so it never
   positions event *n+1* of an aggregate before event *n* (whose ``xid`` may be the higher).
3. The watermark becomes the least of ``(xmin, 0, nil)`` and the key of the first event still
   unpositioned (a later statement, which sees this round's positions); the round commits.

Why a reader never skips: positions only ever go to committed events; a round's positions all exceed
every earlier round's and become visible together at its commit; rounds commit in position order. So
the positions a reader sees are always a prefix ``1..head`` (minus events deleted by retention), and
a cursor at ``p`` has seen every visible event up to ``p``; anything positioned later gets a position
above ``head``. The watermark never passes an unpositioned event: below ``xmin`` every transaction has
ended, so each of its committed events is visible to step 3, which stops at the first unpositioned one.
Per-aggregate order: event *n+1* of an aggregate commits after event *n* (the aggregate's row lock), so a
snapshot that sees *n+1* sees *n* too; *n* is then positioned already, or taken with *n+1* (an unbounded
round takes every candidate; a bounded one adds the earlier events of its aggregates); within a round
positions follow ``(running max of occurred_at within the aggregate, aggregate, sequence)``, monotonic in
``sequence``.

Readers sequence before reading (a round with nothing to do is two index probes), so the feed needs
no background process. A transaction left open holds ``xmin`` back, and each round then re-checks the
events written since it began (an anti-join on the unique event column): cheap for minutes of events.
A backlog (the whole history after the upgrade that added the feed) is positioned ``ROUND_LIMIT`` at a
time, in ``(xid, sequence, id)`` order (so one transaction's events go sequence by sequence), by the
readers' rounds or by ``feed_catch_up()``: no round holds the lock long, and writers never wait for a
round (they do not touch ``FeedState`` or the positions).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from polaris.access import scope_filter
from polaris.accounts.models import User
from polaris.errors import ValidationFailed
from polaris.sql.feed import (
    PAGE_AGENCY,
    PAGE_AGGREGATE_TYPE,
    PAGE_CLIENT,
    PAGE_EVENT_TYPES,
    PAGE_WINDOW,
    feed_page_sql,
    feed_statements,
)

from .models import FeedEntry, FeedState, OutboxEvent

SCAN_WINDOW = 20_000  # positions one page examines at most (filters may match few of them)
ROUND_LIMIT = 10_000  # events one round positions (plus their aggregates' earlier ones if it hits this)

_SQL = feed_statements(OutboxEvent, FeedEntry, FeedState)


def feed_sequence() -> int:
    """One round of position assignment (see the module docstring); returns how many events got one
    (at most ``ROUND_LIMIT``, plus the earlier events of its aggregates when it hit that bound). Outside
    a transaction the round is two round trips (psycopg's pipeline mode: BEGIN with the lock, then the
    assignment, the watermark and COMMIT sent together); inside one, a savepoint and one per statement."""
    return _round()[0]


def _round(then: tuple[str, dict[str, Any]] | None = None) -> tuple[int, list[tuple] | None]:
    """A round, and the rows of ``then`` (a statement run after its commit, in the same round trip as the
    commit) when the round was pipelined (None: the caller runs it)."""
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SQL.state_lock)
            params = _round_params(cursor, cursor.fetchone())
            cursor.execute(_SQL.assign, params)
            assigned = cursor.rowcount
            cursor.execute(_SQL.watermark, params)
        return assigned, None
    connection.ensure_connection()
    raw = connection.connection
    try:
        with raw.pipeline(), raw.cursor() as cursor, raw.cursor() as assigning, raw.cursor() as reading:
            cursor.execute("BEGIN")
            cursor.execute(_SQL.state_lock)
            params = _round_params(cursor, cursor.fetchone())
            assigning.execute(_SQL.assign, params)
            cursor.execute(_SQL.watermark, params)
            cursor.execute("COMMIT")
            rows = None
            if then is not None:
                reading.execute(*then)
                rows = reading.fetchall()  # (inside the block: the cursor closes with it)
        return assigning.rowcount, rows  # known once the pipeline has synced, at the block's end
    except BaseException:
        if not raw.closed:
            raw.rollback()
        raise


def _round_params(cursor: Any, state: tuple | None) -> dict[str, Any]:
    """The round's parameters from its locked state row (made by the first round ever)."""
    if state is None:
        cursor.execute(_SQL.state_ensure)
        cursor.execute(_SQL.state_lock)
        state = cursor.fetchone()
    watermark, resume_sequence, resume, xmin = state
    return {
        "watermark": watermark,
        "resume_sequence": resume_sequence,
        "resume": resume,
        "limit": ROUND_LIMIT,
        "xmin": xmin,
    }


def feed_catch_up() -> int:
    """Rounds until one finds less than a full batch (a backlog, e.g. after an upgrade, is positioned
    ``ROUND_LIMIT`` events per round, each its own short transaction); returns how many got one."""
    total = 0
    while (assigned := feed_sequence()) >= ROUND_LIMIT:
        total += assigned
    return total + assigned


class CursorAhead(ValidationFailed):
    """A cursor beyond the feed's head: following it would skip every event up to it."""

    error_code = "CURSOR_AHEAD"
    default_message = "This cursor is ahead of the feed (restart from a cursor this feed returned)."


# Each envelope as PostgreSQL's json_build_object writes it starts with the global position, which the API
# does not show (it would tell any caller every tenant's volume): the cursor carries it, opaquely.
_POSITION_KEY = re.compile(r'^\{"position" : [0-9]+, ')


@dataclass(frozen=True)
class FeedScope:
    """Which events a caller may read: all (admins), an agency's, or one client's own tasks'."""

    agency_id: str | None = None
    client_id: int | None = None


def _as_text(value: Any) -> str | None:
    """A JSON value as PostgreSQL's ``->>`` gives it (strings bare, numbers as written, null as NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def feed_matches(
    envelope: dict[str, Any],
    *,
    scope: FeedScope,
    event_types: list[str] | None = None,
    aggregate_type: str | None = None,
) -> bool:
    """Whether a page with ``scope`` and these filters would show ``envelope``: the ``PAGE_*`` conditions
    of ``polaris.sql.feed``, in Python. The async tier uses it only to decide whom a commit wakes (each
    woken waiter then reads its page in SQL), and ``tests/outbox/test_event_feed_async.py`` holds the two
    to the same answers."""
    payload = envelope.get("payload") or {}
    if scope.agency_id is not None and _as_text(payload.get("agency_id")) != scope.agency_id:
        return False
    if scope.client_id is not None and (
        envelope.get("aggregate_type") != "task" or _as_text(payload.get("client_id")) != str(scope.client_id)
    ):
        return False
    if event_types and envelope.get("event_type") not in event_types:
        return False
    return not (aggregate_type and envelope.get("aggregate_type") != aggregate_type)


def feed_scope(user: User | None) -> FeedScope:
    """Admins everything; agency agents the events whose payload names their agency; clients the
    events of their own tasks (as ``GET /tasks/{id}/events`` shows them)."""
    # The one scope rule (polaris.access), as the feed's SQL needs it: the agency's id as payload text.
    lookup = scope_filter(user, agency_field="agency", client_field="client")
    if "agency" in lookup:
        return FeedScope(agency_id=str(lookup["agency"]))
    if "client" in lookup:
        return FeedScope(client_id=lookup["client"])
    return FeedScope()


@dataclass
class FeedPage:
    """A page: each event as JSON text (built by PostgreSQL: the page is passed through, not parsed
    and re-rendered), the cursor to continue from and the head position seen."""

    raw: list[str]
    next: int
    head: int
    # Its opaque cursor and response bodies (by projection: client or not), made once by
    # ``outbox.api.feed.feed_response``: one page may answer many waiters.
    cursor: str | None = field(default=None, compare=False, repr=False)
    bodies: dict[bool, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_more(self) -> bool:
        return self.next < self.head

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.raw]

    def body(self, *, cursor: str) -> bytes:
        """The API response body: ``{"events": [...], "next": cursor, "has_more": ...}``, each event's
        envelope without its global ``position`` (``cursor`` is ``next``, made opaque by the caller)."""
        tail = f'],"next":"{cursor}","has_more":{"true" if self.has_more else "false"}}}'
        events = ",".join(_POSITION_KEY.sub("{", text, count=1) for text in self.raw)
        return ('{"events":[' + events + tail).encode()


def feed_page(
    *,
    scope: FeedScope,
    after: int = 0,
    limit: int = 100,
    event_types: list[str] | None = None,
    aggregate_type: str | None = None,
    sequence: bool = True,
) -> FeedPage:
    """Up to ``limit`` events after position ``after`` in feed order, within ``scope`` and the filters,
    and the cursor to continue from (past positions examined that matched nothing, never past ``head``).
    ``head`` and the page come from one statement, so one snapshot. ``CursorAhead`` when ``after`` is
    beyond the head (positions lost, e.g. a restored database): a consumer is never moved past it."""
    conditions = list(PAGE_WINDOW)
    params: dict[str, Any] = {"after": after, "window": SCAN_WINDOW, "limit": limit}
    if scope.agency_id is not None:
        conditions.append(PAGE_AGENCY)
        params["agency_id"] = scope.agency_id
    if scope.client_id is not None:
        conditions.append(PAGE_CLIENT)
        params["client_id"] = str(scope.client_id)
    if event_types:
        conditions.append(PAGE_EVENT_TYPES)
        params["event_types"] = list(event_types)
    if aggregate_type:
        conditions.append(PAGE_AGGREGATE_TYPE)
        params["aggregate_type"] = aggregate_type
    sql = feed_page_sql(_SQL, conditions)
    # A round first (``sequence``): pipelined, the page is read in the same round trip as its commit.
    rows = _round(then=(sql, params))[1] if sequence else None
    if rows is None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    head = rows[0][0]
    if after > head:
        raise CursorAhead(details={"after": ["Beyond the newest event of this feed."]})
    page = [row for row in rows if row[1] is not None]
    next_position = page[-1][1] if len(page) == limit else max(after, min(after + SCAN_WINDOW, head))
    return FeedPage(raw=[row[2] for row in page], next=next_position, head=head)

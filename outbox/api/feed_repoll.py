"""A long-poll's re-poll served on the event loop (the async tier, ``outbox.api.feed_async``).

A consumer that long-polls sends its next request as soon as it has an answer, with the ``next`` it was
given: most requests the async tier serves are such re-polls, and one commit answers hundreds of them at
once. Such a request needs nothing from the database: its cursor is where the fan-out has examined, so a
first read would find nothing. What the full path does for it in the thread pool (DRF's authentication,
the user's row, the throttles, the query string, the cursor) is done here from what this process learnt
from earlier requests, with the same checks:

- the token: one this process validated (``polaris.api.authentication.token_kept``: signature and claims
  checked once, expiry at every request);
- the user's row: as an earlier request of this process read it, kept only while the process's LISTEN
  connection hears every change to it — a trigger on the users table notifies ``accounts_user_changed``
  with the user's id (``polaris/accounts/migrations/0007_user_change_notify.py``); a notification drops
  that row, any gap in the LISTEN drops them all, a row read while a change was heard is not kept. The
  checks (user active, password unchanged, token version current) run on the row at every request, so a
  revoked token is refused as soon as the notification of its revocation arrives;
- the query string without its cursor: exactly as written in a request the full path validated, with the
  same ``Accept`` header;
- the cursor: equal strings decode to the same position (kept by string after one full decode);
- the throttles' counts (``polaris.api.throttling``, the same keys and windows) and the user's wait slot:
  one Redis round trip for both.
Anything else (a first request, a cursor elsewhere, an unknown token, query or header, a refusal to
explain) takes the full path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from django.http import HttpRequest
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from outbox.feed import FeedScope, feed_scope
from outbox.feed_cursor import InvalidCursor, cursor_decode
from polaris.api.authentication import JWTAuthentication, token_kept, user_checked
from polaris.api.throttling import FixedWindowThrottleMixin, window_script

from .feed import EventFeedView, FeedRequest
from .feed_caps import RedisBatch, Script, scripts_run, user_slot_script, user_slot_taken

USER_CHANNEL = "accounts_user_changed"
KEPT = 4096  # entries per table and process; past it the table starts over


@dataclass(frozen=True)
class Query:
    """A validated query string's parameters besides its cursor."""

    limit: int
    event_types: list[str] | None
    aggregate_type: str | None
    wait: float


def _split(query_string: str) -> tuple[str, str] | None:
    """(the query string without its cursor, the cursor) when ``after`` is given once, without escapes."""
    parts = query_string.split("&")
    cursors = [part[6:] for part in parts if part.startswith("after=")]
    if len(cursors) != 1 or "%" in cursors[0] or "+" in cursors[0]:
        return None
    return "&".join(part for part in parts if not part.startswith("after=")), cursors[0]


def _bounded_put(table: dict, key: Any, value: Any) -> None:
    if len(table) >= KEPT:
        table.clear()
    table[key] = value


class Repolls:
    """What one async process learnt from full requests, and the fast path that uses it. Lives on the
    event loop: the full path's results are kept by ``learn`` there, where notifications are handled."""

    def __init__(self) -> None:
        self._users: dict[str, Any] = {}
        self._queries: dict[tuple[str, str], Query] = {}
        self._cursors: dict[str, int] = {}
        self.epoch = 0  # moves at every change heard (and every gap): a row read across one is not kept
        self._authentication = JWTAuthentication()
        self._view = EventFeedView()
        self._throttles = self._view.get_throttles()  # their rates as this process started

    # -- what the LISTEN connection hears (``FeedBroadcaster`` channels and gaps) --

    def user_changed(self, payload: str) -> None:
        self.epoch += 1
        self._users.pop(payload, None)

    def gap(self) -> None:
        self.epoch += 1
        self._users.clear()

    # -- learning from the full path --

    def learn(self, request: HttpRequest, query: FeedRequest, epoch: int) -> None:
        """Keep what a successful full request showed: its user's row (``query.viewer``) if nothing changed
        since ``epoch`` (taken before the row was read), its query string and its cursor."""
        if epoch == self.epoch:
            _bounded_put(self._users, str(query.viewer.pk), query.viewer)
        split = _split(request.META.get("QUERY_STRING", ""))
        if split is None:
            return
        rest, cursor = split
        try:
            if cursor_decode(cursor) != query.after:
                return
        except InvalidCursor:
            return
        _bounded_put(self._cursors, cursor, query.after)
        accept = request.META.get("HTTP_ACCEPT", "")
        _bounded_put(
            self._queries,
            (rest, accept),
            Query(
                limit=query.limit,
                event_types=query.event_types,
                aggregate_type=query.aggregate_type,
                wait=query.wait,
            ),
        )

    def minted(self, cursor: str, position: int) -> None:
        """A cursor this process just gave out (a page's ``next``)."""
        _bounded_put(self._cursors, cursor, position)

    # -- the fast path --

    def request_of(self, request: HttpRequest, examined_to: int | None) -> FeedRequest | None:
        """The request as the full path would read it, if this is a re-poll at ``examined_to`` from a
        known token, user, query and cursor; None otherwise (or when the user may no longer act)."""
        if examined_to is None:
            return None
        split = _split(request.META.get("QUERY_STRING", ""))
        if split is None:
            return None
        rest, cursor = split
        if self._cursors.get(cursor) != examined_to:
            return None
        query = self._queries.get((rest, request.META.get("HTTP_ACCEPT", "")))
        header = request.META.get(api_settings.AUTH_HEADER_NAME)
        if query is None or query.wait <= 0 or not isinstance(header, str):
            return None
        raw = self._authentication.get_raw_token(header.encode("iso-8859-1"))
        token = None if raw is None else token_kept(raw)
        if token is None:
            return None
        try:
            user = user_checked(token, self._users.get(str(token.get(api_settings.USER_ID_CLAIM))))
        except AuthenticationFailed:  # the full path says why, as DRF would
            return None
        request.user = user
        return FeedRequest(
            scope=feed_scope(user),
            after=examined_to,
            limit=query.limit,
            event_types=query.event_types,
            aggregate_type=query.aggregate_type,
            wait=query.wait,
            viewer=user,
        )

    def counts(self, request: HttpRequest) -> list[tuple[FixedWindowThrottleMixin, Script]] | None:
        """The view's throttles that count this request, each with its counting script (None: a throttle
        the fast path does not know)."""
        counted: list[tuple[FixedWindowThrottleMixin, Script]] = []
        for throttle in self._throttles:
            if not isinstance(throttle, FixedWindowThrottleMixin):
                return None
            if (key := throttle.window_key(request, self._view)) is not None:
                counted.append((throttle, window_script(key, throttle.duration)))
        return counted

    async def admit(
        self, batch: RedisBatch, request: HttpRequest, query: FeedRequest
    ) -> tuple[str | None, int] | None:
        """One round trip: the throttles count the request and the user's wait slot is taken: (slot id, 0)
        or (None, seconds until one frees). None when a throttle refuses (the slot is given back and the
        full path answers: it counts the request again, in a window that refuses already) or when the fast
        path cannot say (Redis unreachable: the full path applies what it can, and logs it)."""
        counts = self.counts(request)
        if counts is None:
            return None
        slot, slot_script = user_slot_script(query.viewer.pk, query.wait)
        try:
            replies = await scripts_run(batch, [script for _, script in counts] + [slot_script])
            taken = user_slot_taken(slot, replies[-1])
            if any(
                int(count) > throttle.num_requests
                for (throttle, _), count in zip(counts, replies, strict=False)
            ):
                if taken[0] is not None:
                    await batch.command("ZREM", slot_script[2][0], slot)
                return None
        except (redis.ConnectionError, redis.TimeoutError):
            return None
        return taken


def scope_key(query: FeedRequest) -> tuple[FeedScope, tuple[str, ...] | None, str | None]:
    """Waiters with equal keys wait for the same events (``FeedBroadcaster`` shares their pages)."""
    return query.scope, None if query.event_types is None else tuple(query.event_types), query.aggregate_type

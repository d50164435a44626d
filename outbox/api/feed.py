"""``GET /api/workflow/events``: the event feed, cursor-paginated (the sync tier's view).

Waiting (``wait>0``) is the async tier's job (``outbox.api.feed_async``, served by ``polaris.asgi``; a
reverse proxy routes this path there): a sync worker held by a long-poll is a worker no other request can
use. This view answers at once whatever ``wait`` says (an empty page is a valid long-poll answer) unless
``EVENT_FEED_SYNC_MAX_WAIT_SECONDS`` allows it a short bounded wait. Everything before the waiting —
authentication, throttling, the query string, the scope, the cursor, the first read — is shared with the
async tier through ``feed_request_begin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import transaction
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from outbox.events import aggregate_types_registered, event_types_registered
from outbox.feed import FeedPage, FeedScope, feed_page, feed_scope
from outbox.feed_cursor import MAX_CURSOR_LENGTH, cursor_decode, cursor_encode
from outbox.feed_wait import feed_wait
from outbox.projection import feed_events_project
from polaris.access import is_client
from polaris.accounts.models import User
from polaris.api.query_params import query_params_parse
from polaris.api.schema import error_response


def _event_types_pattern() -> str:
    """One or more registered event types, comma-separated, nothing else (what the view accepts)."""
    one = "(?:" + "|".join(re.escape(name) for name in sorted(event_types_registered())) + ")"
    return f"^{one}(?:,{one})*$"


class FeedQuerySerializer(serializers.Serializer):
    """The feed's query string. Bounds come from the settings, read when the fields are built, so the
    OpenAPI document declares exactly what this server refuses (``maximum``, the type lists)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "after": serializers.CharField(
                required=False,
                max_length=MAX_CURSOR_LENGTH,
                help_text=(
                    "The `next` of the previous page, unchanged (opaque: encrypted and authenticated; a "
                    "changed one is 400 `INVALID_CURSOR`, one ahead of the feed 400 `CURSOR_AHEAD`). "
                    "Leave it out to start from the beginning."
                ),
            ),
            "event_type": serializers.CharField(
                required=False,
                validators=[
                    RegexValidator(
                        _event_types_pattern(),
                        message="Registered event types, comma-separated, e.g. TaskCreated,TaskUpdated.",
                    )
                ],
                help_text="Comma-separated registered event types.",
            ),
            "aggregate_type": serializers.ChoiceField(
                required=False,
                choices=aggregate_types_registered(),
                help_text="One registered aggregate type.",
            ),
            "limit": serializers.IntegerField(
                required=False, min_value=1, max_value=settings.EVENT_FEED_MAX_LIMIT, help_text="Default 100."
            ),
            "wait": serializers.FloatField(
                required=False,
                min_value=0,
                max_value=settings.EVENT_FEED_MAX_WAIT_SECONDS,
                help_text=(
                    "Seconds to long-poll when nothing is new (served by the async tier; capped per user "
                    "and per process: 429 `TOO_MANY_WAITS` with `Retry-After` beyond)."
                ),
            ),
        }

    def validate_event_type(self, value: str) -> list[str]:
        return value.split(",")


_PAGE = inline_serializer(
    "EventFeedPage",
    {
        "events": serializers.ListField(child=serializers.DictField(), help_text="Event envelopes."),
        "next": serializers.CharField(help_text="Opaque: pass as `after` to continue."),
        "has_more": serializers.BooleanField(),
    },
)


@dataclass(frozen=True)
class FeedRequest:
    """A validated feed request: what to read, and how long the caller may wait for it."""

    scope: FeedScope
    after: int
    limit: int
    event_types: list[str] | None
    aggregate_type: str | None
    wait: float
    viewer: Any = None  # the caller: what it may see of each event (``outbox.projection``)

    def read(self, *, sequence: bool = True) -> FeedPage:
        """The page; ``sequence=False`` skips the position round (the async tier's broadcaster runs one
        per commit before it wakes anyone, so a woken waiter's re-read need not)."""
        return feed_page(
            scope=self.scope,
            after=self.after,
            limit=self.limit,
            event_types=self.event_types,
            aggregate_type=self.aggregate_type,
            sequence=sequence,
        )


def feed_request_parse(request: Request) -> FeedRequest:
    """The query string, the caller's scope and the decoded cursor (400s as domain errors)."""
    params, _ = query_params_parse(request=request, serializer_class=FeedQuerySerializer)
    return FeedRequest(
        scope=feed_scope(cast(User, request.user)),
        after=cursor_decode(params["after"]) if "after" in params else 0,
        limit=params.get("limit", 100),
        event_types=params.get("event_type"),
        aggregate_type=params.get("aggregate_type"),
        wait=params.get("wait", 0.0),
        viewer=request.user,
    )


def feed_response(page: FeedPage, *, viewer: Any) -> HttpResponse:
    """The page as ``viewer`` may see it (a client: each event's projection; staff: the rows as stored).
    The body is kept on the page by projection, so the waiters one commit answers with the same page
    share one rendering (and one cursor: it carries only the position, the same for all of them)."""
    client = is_client(viewer)
    body = page.bodies.get(client)
    if body is None:
        if page.cursor is None:
            page.cursor = cursor_encode(page.next)
        shown = FeedPage(raw=feed_events_project(page.raw, viewer=viewer), next=page.next, head=page.head)
        body = page.bodies[client] = shown.body(cursor=page.cursor)
    return HttpResponse(body, content_type="application/json")


# Not in the request's transaction: the reads must see new commits, and a feed round commits its own.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class EventFeedView(APIView):
    @extend_schema(
        operation_id="workflow_event_feed",
        summary="The event feed: every committed event in your scope, in one total order",
        description=(
            "Follow `next` as `after`: a consumer that does never misses an event, even one whose "
            "transaction commits late. Cursors are opaque (they reveal no position). `wait` long-polls "
            "when nothing is new, on the async tier (docs/operations.md: a reverse proxy routes this path "
            "there); at most `EVENT_FEED_MAX_WAITS_PER_USER` waits per user at once. Admins see every "
            "event, agency agents and supervisors their agency's, clients their own tasks'."
        ),
        tags=["events"],
        parameters=[FeedQuerySerializer],
        responses={
            200: _PAGE,
            400: error_response(
                "400",
                "`VALIDATION_ERROR` (the query string, e.g. an unknown `aggregate_type`), "
                "`INVALID_CURSOR` (a cursor this server did not issue, or changed) or `CURSOR_AHEAD` "
                "(beyond the feed's head).",
            ),
            429: error_response(
                "429",
                "`THROTTLED`, or `TOO_MANY_WAITS` (this user's concurrent long-polls are at their cap); "
                "`Retry-After` says when to try again.",
            ),
            503: error_response(
                "503", "`FEED_BUSY`: this process holds its cap of long-polls (`Retry-After`)."
            ),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        query = feed_request_parse(request)
        wait = min(query.wait, settings.EVENT_FEED_SYNC_MAX_WAIT_SECONDS)
        return feed_response(feed_wait(read=query.read, wait=wait), viewer=query.viewer)

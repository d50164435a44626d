"""``GET /api/workflow/events``: the event feed, cursor-paginated, with long-poll (``wait=``)."""

from __future__ import annotations

import re
from typing import cast

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import transaction
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from outbox.events import event_types_registered
from outbox.feed import feed_page, feed_scope
from outbox.feed_wait import feed_wait
from outbox.projection import feed_events_project
from polaris.accounts.models import User
from polaris.api.query_params import query_params_parse
from polaris.api.schema import error_response


def _event_types_pattern() -> str:
    """One or more registered event types, comma-separated, nothing else (what the view accepts)."""
    one = "(?:" + "|".join(re.escape(name) for name in sorted(event_types_registered())) + ")"
    return f"^{one}(?:,{one})*$"


class FeedQuerySerializer(serializers.Serializer):
    """The feed's query string. Bounds come from the settings, read when the fields are built, so the
    OpenAPI document declares exactly what this server refuses (``maximum``, the type list)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "after": serializers.RegexField(
                r"^[0-9]{1,18}$", required=False, help_text="The `next` cursor of the previous page (opaque)."
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
            "aggregate_type": serializers.CharField(required=False, max_length=32),
            "limit": serializers.IntegerField(
                required=False, min_value=1, max_value=settings.EVENT_FEED_MAX_LIMIT, help_text="Default 100."
            ),
            "wait": serializers.FloatField(
                required=False,
                min_value=0,
                max_value=settings.EVENT_FEED_MAX_WAIT_SECONDS,
                help_text="Seconds to long-poll when empty.",
            ),
        }

    def validate_event_type(self, value: str) -> list[str]:
        return value.split(",")


_PAGE = inline_serializer(
    "EventFeedPage",
    {
        "events": serializers.ListField(
            child=serializers.DictField(), help_text="Event envelopes + `position`."
        ),
        "next": serializers.CharField(help_text="Pass as `after` to continue."),
        "has_more": serializers.BooleanField(),
    },
)


# Not in the request's transaction: the reads must see new commits, and a feed round commits its own.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class EventFeedView(APIView):
    @extend_schema(
        operation_id="workflow_event_feed",
        summary="The event feed: every committed event in your scope, in one total order",
        description=(
            "Follow `next` as `after`: a consumer that does never misses an event, even one whose "
            "transaction commits late. `wait` long-polls when nothing is new. Admins see every event, "
            "agency agents their agency's, clients their own tasks'."
        ),
        tags=["events"],
        parameters=[FeedQuerySerializer],
        responses={200: _PAGE, 400: error_response("400", "VALIDATION_ERROR")},
    )
    def get(self, request: Request) -> HttpResponse:
        params, _ = query_params_parse(request=request, serializer_class=FeedQuerySerializer)
        scope = feed_scope(cast(User, request.user))
        after = int(params.get("after", 0))

        def read():
            return feed_page(
                scope=scope,
                after=after,
                limit=params.get("limit", 100),
                event_types=params.get("event_type"),
                aggregate_type=params.get("aggregate_type"),
            )

        page = feed_wait(read=read, wait=params.get("wait", 0.0))
        page.raw = feed_events_project(page.raw, viewer=request.user)  # what a client may see of each
        return HttpResponse(page.body(), content_type="application/json")

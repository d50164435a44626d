"""``GET /api/workflow/events``: the event feed, cursor-paginated, with long-poll (``wait=``)."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from outbox.events import event_types_registered
from outbox.feed import feed_page, feed_scope
from outbox.feed_wait import feed_wait
from polaris.accounts.models import User
from polaris.api.query_params import query_params_parse
from polaris.api.schema import error_response


class FeedQuerySerializer(serializers.Serializer):
    after = serializers.RegexField(
        r"^[0-9]{1,18}$", required=False, help_text="The `next` cursor of the previous page (opaque)."
    )
    event_type = serializers.CharField(required=False, help_text="Comma-separated event types.")
    aggregate_type = serializers.CharField(required=False, max_length=32)
    limit = serializers.IntegerField(required=False, min_value=1)
    wait = serializers.FloatField(required=False, min_value=0, help_text="Seconds to long-poll when empty.")

    def validate_limit(self, value: int) -> int:
        if value > settings.EVENT_FEED_MAX_LIMIT:
            raise serializers.ValidationError(f"At most {settings.EVENT_FEED_MAX_LIMIT}.")
        return value

    def validate_wait(self, value: float) -> float:
        if value > settings.EVENT_FEED_MAX_WAIT_SECONDS:
            raise serializers.ValidationError(f"At most {settings.EVENT_FEED_MAX_WAIT_SECONDS:g} seconds.")
        return value

    def validate_event_type(self, value: str) -> list[str]:
        types = [t.strip() for t in value.split(",") if t.strip()]
        unknown = sorted(set(types) - set(event_types_registered()))
        if unknown:
            raise serializers.ValidationError(f"Unknown event type(s): {', '.join(unknown)}.")
        return types


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
        parameters=[
            OpenApiParameter("after", str),
            OpenApiParameter("event_type", str),
            OpenApiParameter("aggregate_type", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("wait", float),
        ],
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
        return HttpResponse(page.body(), content_type="application/json")

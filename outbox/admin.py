"""The outbox in admin: the event history, dead letters (with replay) and the dispatch ledger."""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin, run_for_each

from .models import HandledEvent, OutboxEvent
from .replay import outbox_event_replay


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "status",
        "attempts",
        "occurred_at",
        "next_attempt_at",
        "dispatched_at",
    )
    list_filter = ("status", "event_type", "aggregate_type")
    search_fields = ("=id", "=aggregate_id", "=correlation_id")
    ordering = ("-occurred_at",)
    # The table is also the event history: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    actions = ("replay",)

    @admin.action(description="Replay selected dead events")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda event: outbox_event_replay(event_id=event.pk, actor=cast(User, request.user)),
            "event(s) queued for replay",
        )


@admin.register(HandledEvent)
class HandledEventAdmin(ReadOnlyAdmin):
    list_display = ("handler", "event", "handled_at")
    list_filter = ("handler",)
    search_fields = ("=event__id",)
    list_select_related = ("event",)
    show_full_result_count = False

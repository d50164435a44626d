"""The outbox in admin: the event history, dead letters (with replay) and the dispatch ledger.

The list shows each event's last error cut short (the full text is on the event's page); a dead event's
page has a Replay button. Replay, from the button or the list action, is ``outbox_event_replay``, the
service behind ``POST /api/workflow/events/{id}/replay`` (admins only, audited, dead events only).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin, run_for_each
from polaris.errors import DomainError

from .models import HandledEvent, OutboxEvent
from .replay import outbox_event_replay

ERROR_EXCERPT_LENGTH = 80  # characters of the last error in the list


def _short(value: Any) -> str:
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return date_format(local, "j M H:i:s" if local.year == timezone.localtime().year else "j M Y H:i")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_type",
        "aggregate",
        "sequence",
        "status",
        "attempts",
        "occurred",
        "last_error_excerpt",
    )
    list_filter = ("status", "event_type", "aggregate_type")
    search_fields = ("=id", "=aggregate_id", "=correlation_id")
    ordering = ("-occurred_at",)
    # The table is also the event history: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    actions = ("replay",)
    readonly_fields = ("last_error_full",)
    exclude = ("last_error",)

    @admin.display(description="Aggregate", ordering="aggregate_id")
    def aggregate(self, event: OutboxEvent) -> str:
        return format_html(
            '<span title="{}">{} {}…</span>',
            event.aggregate_id,
            event.aggregate_type,
            str(event.aggregate_id)[:8],
        )

    @admin.display(description="Occurred", ordering="occurred_at")
    def occurred(self, event: OutboxEvent) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', _short(event.occurred_at))

    @admin.display(description="Last error")
    def last_error_excerpt(self, event: OutboxEvent) -> str:
        text = " ".join(event.last_error.split())
        if len(text) > ERROR_EXCERPT_LENGTH:
            text = text[: ERROR_EXCERPT_LENGTH - 1] + "…"
        return format_html('<span class="last-error" title="{}">{}</span>', event.last_error[:2000], text)

    @admin.display(description="Last error")
    def last_error_full(self, event: OutboxEvent) -> str:
        if not event.last_error:
            return "—"
        return format_html(
            '<pre id="event-last-error" style="white-space: pre-wrap; margin: 0">{}</pre>', event.last_error
        )

    @admin.action(description="Replay selected dead events")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda event: outbox_event_replay(event_id=event.pk, actor=cast(User, request.user)),
            "event(s) queued for replay",
        )

    def get_urls(self) -> list[URLPattern]:
        route = path(
            "<path:object_id>/replay/",
            self.admin_site.admin_view(require_POST(self.replay_view)),
            name="outbox_outboxevent_replay",
        )
        return [route, *super().get_urls()]

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The Replay button of a dead event's page (POST only); a refusal is a message on that page."""
        event = self.get_object(request, object_id)
        if event is None or not self.has_view_permission(request, event):
            raise Http404("Event not found.")
        try:
            outbox_event_replay(event_id=event.pk, actor=cast(User, request.user))
        except DomainError as exc:
            self.message_user(request, f"{exc.message} ({exc.error_code})", level=messages.ERROR)
        else:
            self.message_user(
                request, "Event queued for replay: it is pending again, due now.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:outbox_outboxevent_change", args=[event.pk]))


@admin.register(HandledEvent)
class HandledEventAdmin(ReadOnlyAdmin):
    list_display = ("handler", "event", "handled_at")
    list_filter = ("handler",)
    search_fields = ("=event__id",)
    list_select_related = ("event",)
    show_full_result_count = False

"""The admin task page's workflow parts: lifecycle buttons, the block form and the event history.

Each button posts to :func:`task_transition_view`, which calls ``task_transition`` — the service behind
``POST /api/workflow/tasks/{id}/transition`` — so the event, the SLA bookkeeping, the guards, the
permission and the compare-and-swap are exactly the API's. The button carries the version the page was
rendered from (``expected_version``): a page gone stale is refused (``PRECONDITION_FAILED``) instead of
acting on a task someone else has moved. A refusal of any kind is an admin message, never an error page.

The SLA and timer panels are drawn by ``ops.templatetags.ops_task_page`` (the top floor reads ``sla`` and
``automation``; ``workflow`` may not import them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.errors import DomainError
from workflow.guards import guard_name
from workflow.machines import transitions_of
from workflow.models import Task, TaskState
from workflow.selectors import aggregate_events
from workflow.services.tasks import task_transition

HISTORY_LIMIT = 50  # newest events shown on the page; the outbox list has the rest
REASON_MAX_LENGTH = 2000  # the API's bound on a transition's reason
SUMMARY_MAX_LENGTH = 160

# What a failing guard asks of the person at the page (guard names are the API's ``details.guards``).
GUARD_HINTS = {
    "has_assignee": "assign someone first",
    "has_blocked_reason": "give a reason",
}
BUTTON_LABELS = {
    "start": "Start",
    "block": "Block…",
    "resume": "Resume",
    "complete": "Complete",
    "cancel": "Cancel task",
}


@dataclass(frozen=True)
class TransitionButton:
    """One edge out of the task's state that the viewer may take; ``missing``: guards failing now."""

    name: str
    target: str
    label: str
    missing: tuple[str, ...]
    asks_reason: bool

    @property
    def hint(self) -> str:
        return ", ".join(GUARD_HINTS.get(name, name) for name in self.missing)


def transition_buttons(*, task: Task, user: User) -> list[TransitionButton]:
    """The task's outgoing edges the user may take, from django-fsm: enabled when
    ``get_available_user_state_transitions`` (conditions and permission) offers them, and ``block``
    whenever its edge and permission allow, since its one guard is the reason the button asks for."""
    ready = {str(t.target) for t in task.get_available_user_state_transitions(user)}  # type: ignore[attr-defined]
    buttons = []
    for transition in transitions_of(Task):
        if transition.source != task.state or not transition.has_perm(task, user):
            continue
        target = str(transition.target)
        asks_reason = target == TaskState.BLOCKED
        missing: tuple[str, ...] = ()
        if target not in ready:
            missing = tuple(
                guard_name(condition)
                for condition in transition.conditions
                if not (asks_reason and guard_name(condition) == "has_blocked_reason") and not condition(task)
            )
        label = BUTTON_LABELS.get(transition.name, transition.name.replace("_", " ").capitalize())
        buttons.append(TransitionButton(transition.name, target, label, missing, asks_reason))
    return buttons


@dataclass(frozen=True)
class HistoryRow:
    event: OutboxEvent
    summary: str


def event_summary(event: OutboxEvent) -> str:
    """One line on what an event says: the move and its reason, or the fields an edit changed."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    parts = []
    if payload.get("new_state") and payload.get("old_state"):
        parts.append(f"{payload['old_state']} → {payload['new_state']}")
    elif payload.get("new_state"):
        parts.append(f"created {payload['new_state']}")
    if payload.get("reason"):
        internal = " (internal)" if payload.get("reason_internal") else ""
        parts.append(f"reason{internal}: {payload['reason']}")
    if isinstance(payload.get("changes"), dict):
        parts.append("changed: " + ", ".join(sorted(payload["changes"])))
    summary = " · ".join(parts)
    return summary if len(summary) <= SUMMARY_MAX_LENGTH else summary[: SUMMARY_MAX_LENGTH - 1] + "…"


def task_history(*, task: Task, limit: int = HISTORY_LIMIT) -> tuple[list[HistoryRow], bool]:
    """The task's newest ``limit`` events (from the outbox: it is the history), and whether there are more."""
    events = list(
        aggregate_events(aggregate_type=Task.aggregate_type, aggregate_id=task.pk)
        .select_related("actor")
        .order_by("-sequence")[: limit + 1]
    )
    return [HistoryRow(event, event_summary(event)) for event in events[:limit]], len(events) > limit


def task_page_context(*, task: Task, user: User) -> dict[str, Any]:
    """What the change form template adds to the usual form: buttons and history."""
    history, more = task_history(task=task)
    return {
        "transition_buttons": transition_buttons(task=task, user=user),
        "history": history,
        "history_more": more,
        "history_limit": HISTORY_LIMIT,
        "history_url": reverse("admin:outbox_outboxevent_changelist") + f"?aggregate_id={task.pk}",
    }


class BlockForm(forms.Form):
    """The reason a block asks for (bounded like the API's); ``internal`` keeps it from the client."""

    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Why the task cannot go on. Shown to the client unless marked internal.",
    )
    internal = forms.BooleanField(required=False, label="Internal (staff only)")
    read_version = forms.IntegerField(widget=forms.HiddenInput)


def _read_version(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("read_version", ""))
    except ValueError:
        return None


def task_transition_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str, target: str
) -> HttpResponse:
    """POST: move the task to ``target`` through the API's service; GET is only for ``blocked`` (the form
    that asks for the reason). Out of the viewer's scope (or absent) is 404."""
    task = model_admin.get_object(request, object_id)
    if task is None or not model_admin.has_view_permission(request, task):
        raise Http404("Task not found.")
    change_url = reverse("admin:workflow_task_change", args=[task.pk])
    asks_reason = target == TaskState.BLOCKED
    if request.method not in ("POST", "GET") or (request.method == "GET" and not asks_reason):
        return HttpResponseNotAllowed(["POST"])
    form = BlockForm(request.POST or None, initial={"read_version": task.version}) if asks_reason else None
    if request.method == "GET" or (form is not None and not form.is_valid()):
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Block “{task}”",
            "opts": model_admin.model._meta,
            "original": task,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/workflow/task/block.html", context)
    data = form.cleaned_data if form is not None else {}
    version = data.get("read_version") if form is not None else _read_version(request)
    if version is None:  # every button sends the version it was drawn at; without it, do nothing
        model_admin.message_user(request, "Reload the page and try again.", level=messages.ERROR)
        return HttpResponseRedirect(change_url)
    try:
        task_transition(
            task_id=task.pk,
            target_state=target,
            actor=cast(User, request.user),
            reason=data.get("reason", ""),
            internal=bool(data.get("internal")),
            expected_version=version,
            correlation_id=getattr(request, "correlation_id", None),
        )
    except DomainError as exc:
        detail = exc.details.get("guards") if isinstance(exc.details, dict) else None
        hint = f" — needs: {', '.join(GUARD_HINTS.get(g, g) for g in detail)}" if detail else ""
        model_admin.message_user(request, f"{exc.message}{hint} ({exc.error_code})", level=messages.ERROR)
    else:
        model_admin.message_user(request, f"Task moved to {TaskState(target).label}.", level=messages.SUCCESS)
    return HttpResponseRedirect(change_url)

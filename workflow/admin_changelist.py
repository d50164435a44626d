"""The task changelist: columns that fit 1440 px, short dates, an overdue highlight, and the filters the
dashboard links to (state, overdue, SLA status).

Dates are short (``7 Dec 14:30``; the year only when it is not this one) and never wrap; the state is a
coloured badge; Due at turns red and says "overdue" when the time has passed on an open task. The SLA
filter applies the ``sla_status`` filter the SLA app registers (``workflow.extensions.task_filters``), the
same rule as the API's ``?sla_status=``, so the dashboard's SLA bars and the API count the same tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from polaris.errors import DomainError
from workflow import extensions
from workflow.models import Task
from workflow.services.tasks import CLOSED_STATES

# Six columns (and the checkbox) fit 1440 px beside the nav sidebar and the filters; the client is on the
# task page (and the search finds tasks by client username).
TASK_LIST_DISPLAY = ("title", "state_badge", "priority", "assignee", "due", "created")


def short_datetime(value: datetime | None, *, now: datetime | None = None) -> str:
    """``7 Dec 14:30`` in the current time zone; ``7 Dec 2025`` for another year; ``—`` for none."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    this_year = timezone.localtime(now or timezone.now()).year
    return date_format(local, "j M H:i" if local.year == this_year else "j M Y")


def is_overdue(task: Task, *, now: datetime | None = None) -> bool:
    """Due and not done: a due time in the past on a task that is not completed or cancelled."""
    return (
        task.due_at is not None and task.state not in CLOSED_STATES and task.due_at < (now or timezone.now())
    )


class TaskListColumns:
    """The changelist's computed columns (mixed into ``TaskAdmin``)."""

    @admin.display(description="Status", ordering="state")
    def state_badge(self, task: Task) -> str:
        return format_html(
            '<span class="task-state task-state-{}">{}</span>', task.state, task.get_state_display()
        )

    @admin.display(description="Due", ordering="due_at")
    def due(self, task: Task) -> str:
        text = short_datetime(task.due_at)
        if is_overdue(task):
            return format_html('<span class="task-overdue" title="Overdue">{} · overdue</span>', text)
        return format_html('<span class="task-date">{}</span>', text)

    @admin.display(description="Created", ordering="created_at")
    def created(self, task: Task) -> str:
        return format_html('<span class="task-date">{}</span>', short_datetime(task.created_at))


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        if self.value() != "yes":
            raise IncorrectLookupParameters("overdue takes yes")
        return queryset.filter(due_at__lt=timezone.now()).exclude(state__in=CLOSED_STATES)


class SLAStatusFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "sla_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        if "sla_status" not in extensions.task_filters:
            return []
        return [(value, value.replace("_", " ").capitalize()) for value in extensions.SLA_STATUS_VALUES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        apply = extensions.task_filters.get("sla_status")
        if value is None or apply is None:
            return queryset
        try:
            return apply(queryset, value)
        except DomainError as exc:  # an unknown value: the changelist's "?e=1" page, not a 500
            raise IncorrectLookupParameters(exc.message) from None


def task_list_filters() -> tuple[Any, ...]:
    return ("state", OverdueFilter, SLAStatusFilter, "priority", "task_type", "service_area", "agency")

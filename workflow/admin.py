"""Admin for tasks and action plans.

Writes go through the same services as the API (so every change writes its event and passes the
guards, permissions and the compare-and-swap): the change form's valid data is handed to
``task_update``/``action_plan_update`` (a refusal becomes form errors), admin actions and the task
page's lifecycle buttons (``workflow.admin_task_page``) call the transition services. Closed tasks and
archived plans are view-only (no Save button); tasks and plans are created through the API, not the admin.
Rows are scoped like the API (``workflow.selectors``): out of the viewer's scope is not found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path

from outbox.models import OutboxEvent
from polaris.accounts.admin_site import SupervisorAgencyAdmin, admin_viewable, site_supervisor
from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin, run_for_each
from polaris.errors import DomainError
from workflow.admin_changelist import TASK_LIST_DISPLAY, TaskListColumns, task_list_filters
from workflow.admin_task_page import task_page_context, task_transition_view
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
from workflow.selectors import action_plan_queryset, task_queryset
from workflow.services.action_plans import PLAN_EDITABLE_FIELDS, action_plan_transition, action_plan_update
from workflow.services.tasks import CLOSED_STATES, EDITABLE_FIELDS, task_transition, task_update


def _service_form(model: type, fields: tuple[str, ...], update: Callable[..., Any]) -> type[forms.ModelForm]:
    """A change form whose ``clean()`` hands the changed fields to ``update`` (the service) with the
    version the form was rendered from; the ``DomainError`` it raises becomes the form's errors."""

    class ServiceForm(forms.ModelForm):
        read_version = forms.IntegerField(widget=forms.HiddenInput)
        actor: Any = None

        class Meta:
            pass

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fields["read_version"].initial = self.instance.version

        def _post_clean(self) -> None:
            # The service writes the row; the ModelForm must not copy values onto the instance.
            pass

        def clean(self) -> dict[str, Any]:
            data = super().clean() or {}
            changed = {name: data[name] for name in self.changed_data if name in fields and name in data}
            if self.errors or not changed:
                return data
            try:
                update(
                    self.instance.pk,
                    actor=self.actor,
                    changes=changed,
                    expected_version=data.get("read_version"),
                )
            except DomainError as exc:
                field_errors = {k: v for k, v in exc.details.items() if k in self.fields}
                if field_errors:
                    raise ValidationError(field_errors) from None
                raise ValidationError(f"{exc.message} ({exc.error_code})") from None
            return data

    ServiceForm.Meta.model = model
    ServiceForm.Meta.fields = fields
    return ServiceForm


def _task_update(task_id: Any, **kwargs: Any) -> Any:
    return task_update(task_id=task_id, **kwargs)


def _plan_update(plan_id: Any, **kwargs: Any) -> Any:
    return action_plan_update(action_plan_id=plan_id, **kwargs)


class ServiceEditAdmin(ReadOnlyAdmin):
    """Change forms that edit through a service; ``editable(obj)`` says when Save makes sense."""

    service_form: type[forms.ModelForm]

    def editable(self, obj: Any) -> bool:
        return True

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = admin.ModelAdmin.has_change_permission(self, request, obj)
        return allowed and (obj is None or self.editable(obj))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None or not self.editable(obj):
            return super().get_form(request, obj, change=change, **kwargs)
        form = type("BoundServiceForm", (self.service_form,), {"actor": cast(User, request.user)})
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or not self.editable(obj):
            return super().get_readonly_fields(request, obj)
        return [
            field.name for field in self.model._meta.concrete_fields if field.name not in self.edit_fields
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or not self.editable(obj):
            return super().get_fields(request, obj)
        readonly = [f.name for f in self.model._meta.concrete_fields if f.name not in self.edit_fields]
        return [*self.edit_fields, "read_version", *readonly]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Already saved by the service in the form's ``clean()``."""

    edit_fields: tuple[str, ...] = ()


def _task_transition_action(target: str, name: str, description: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        run_for_each(
            modeladmin,
            request,
            queryset,
            lambda task: task_transition(
                task_id=task.pk, target_state=target, actor=cast(User, request.user)
            ),
            f"task(s) moved to {target}",
        )

    action.__name__ = name
    return admin.action(description=description)(action)


def _plan_transition_action(target: str, name: str, description: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        run_for_each(
            modeladmin,
            request,
            queryset,
            lambda plan: action_plan_transition(
                action_plan_id=plan.pk, target_state=target, actor=cast(User, request.user)
            ),
            f"plan(s) moved to {target}",
        )

    action.__name__ = name
    return admin.action(description=description)(action)


def task_assignee_choices(task: Task) -> QuerySet[User]:
    """Who the assignee chooser offers: the task's agency's active staff (agents and supervisors), never
    clients or another agency's people; the current assignee stays listed so an untouched form is valid.
    The service checks the choice again (``may_serve``)."""
    staff = Q(is_active=True, role__in=User.STAFF_ROLES, agency_id=task.agency_id)
    if task.assignee_id is not None:
        staff |= Q(pk=task.assignee_id)
    return User.objects.filter(staff).order_by("username")


def task_plan_choices(task: Task) -> QuerySet[ActionPlan]:
    """The plans the plan chooser offers: the task's client's plans in the task's agency (the service's
    rule), so no other agency's plan titles reach the page; archived ones are refused by the service."""
    return ActionPlan.objects.filter(client_id=task.client_id, agency_id=task.agency_id).order_by("title")


class _TaskServiceForm(_service_form(Task, EDITABLE_FIELDS, _task_update)):  # type: ignore[misc]
    """The task change form: the admin's date and time pickers for ``due_at``; the assignee chooser
    limited to the task's agency staff and the plan chooser to its client's plans there (the fields reject
    anyone or anything else, before the service does)."""

    due_at = forms.SplitDateTimeField(required=False, widget=AdminSplitDateTime, label="Due at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = task_assignee_choices(self.instance)
        self.fields["action_plan"].queryset = task_plan_choices(self.instance)


UNLINKED = ("client", "agency", "created_by", "assignee", "action_plan")


def _unlinked_display(name: str) -> Any:
    """A read-only display of the task's ``name`` relation as text (no link to its admin page)."""

    @admin.display(description=cast(models.Field, Task._meta.get_field(name)).verbose_name)
    def display(self: Any, obj: Task) -> Any:
        return getattr(obj, name)

    return display


@admin.register(Task)
class TaskAdmin(TaskListColumns, SupervisorAgencyAdmin, ServiceEditAdmin):
    edit_fields = EDITABLE_FIELDS
    service_form = _TaskServiceForm

    def editable(self, obj: Any) -> bool:
        return obj.state not in CLOSED_STATES

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return task_queryset(user=cast(User, request.user)).select_related(*self.list_select_related)

    # A supervisor (admitted by the site for their agency) sees and works their agency's tasks
    # (``SupervisorAgencyAdmin``); the rows are already scoped (``task_queryset``), and the services judge
    # each change as the API does.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if site_supervisor(request) is None:
            return super().has_change_permission(request, obj)
        return self.has_view_permission(request, obj) and (obj is None or self.editable(obj))

    # Django links a read-only related field to the row's admin page; a viewer who may not open that page
    # (a supervisor: users, agencies and plans are the admin role's) gets the related row named instead.
    client_unlinked = _unlinked_display("client")
    agency_unlinked = _unlinked_display("agency")
    created_by_unlinked = _unlinked_display("created_by")
    assignee_unlinked = _unlinked_display("assignee")
    action_plan_unlinked = _unlinked_display("action_plan")

    def _unlinked(self, request: HttpRequest) -> list[str]:
        """The relations whose admin pages are closed to this viewer."""
        return [
            name for name in UNLINKED if not admin_viewable(request, Task._meta.get_field(name).related_model)
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        unlinked = set(self._unlinked(request))
        if obj is not None and self.editable(obj):
            unlinked -= set(self.edit_fields)  # form fields: a chooser, no link
        return list(dict.fromkeys(f"{name}_unlinked" if name in unlinked else name for name in fields))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        unlinked = self._unlinked(request)
        readonly = [name for name in super().get_readonly_fields(request, obj) if name not in unlinked]
        return [*readonly, *(f"{name}_unlinked" for name in unlinked)]

    def get_list_filter(self, request: HttpRequest) -> Any:
        if site_supervisor(request) is None:
            return self.list_filter
        # Their agency only: the related filter would list every agency's name.
        return tuple(
            ("agency", RelatedOnlyFieldListFilter) if item == "agency" else item for item in self.list_filter
        )

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> Any:
        """Absent or out of the viewer's scope is 404, as in the API (not Django's redirect)."""
        raise Http404("Task not found.")

    def get_urls(self) -> list[URLPattern]:
        def transition(request: HttpRequest, object_id: str, target: str) -> HttpResponse:
            return task_transition_view(self, request, object_id, target)

        route = path(
            "<path:object_id>/transition/<str:target>/",
            self.admin_site.admin_view(transition),
            name="workflow_task_transition",
        )
        return [route, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        task = self.get_object(request, object_id)
        if task is not None and self.has_view_permission(request, task):
            extra_context = {
                **(extra_context or {}),
                **task_page_context(task=task, user=cast(User, request.user)),
            }
            if not admin_viewable(request, OutboxEvent):
                extra_context["history_url"] = None
        return super().change_view(request, object_id, form_url, extra_context)

    list_display = TASK_LIST_DISPLAY
    list_filter = task_list_filters()
    search_fields = ("=id", "title", "client__username", "assignee__username")
    list_select_related = ("assignee",)
    list_per_page = 50
    date_hierarchy = "created_at"
    actions = (
        _task_transition_action(TaskState.IN_PROGRESS, "start_or_resume", "Start / resume selected tasks"),
        _task_transition_action(TaskState.COMPLETED, "complete", "Complete selected tasks"),
        _task_transition_action(TaskState.CANCELLED, "cancel", "Cancel selected tasks"),
    )


@admin.register(ActionPlan)
class ActionPlanAdmin(ServiceEditAdmin):
    edit_fields = PLAN_EDITABLE_FIELDS
    service_form = _service_form(ActionPlan, PLAN_EDITABLE_FIELDS, _plan_update)

    def editable(self, obj: Any) -> bool:
        return obj.state != ActionPlanState.ARCHIVED

    def get_queryset(self, request: HttpRequest) -> QuerySet[ActionPlan]:
        return action_plan_queryset(user=cast(User, request.user))

    list_display = ("title", "state", "agency", "client", "created_at")
    list_filter = ("state", "agency")
    search_fields = ("=id", "title", "client__username")
    list_select_related = ("agency", "client")
    actions = (
        _plan_transition_action(ActionPlanState.ACTIVE, "activate", "Activate selected plans"),
        _plan_transition_action(ActionPlanState.ARCHIVED, "archive", "Archive selected plans"),
    )

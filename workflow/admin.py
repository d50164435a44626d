"""Admin for tasks and action plans.

Writes go through the same services as the API (so every change writes its event and passes the
guards, permissions and the compare-and-swap): the change form's valid data is handed to
``task_update``/``action_plan_update`` (a refusal becomes form errors), admin actions call the
transition services. Closed tasks and archived plans are view-only (no Save button); tasks and plans
are created through the API, not the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin, run_for_each
from polaris.errors import DomainError
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
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


@admin.register(Task)
class TaskAdmin(ServiceEditAdmin):
    edit_fields = EDITABLE_FIELDS
    service_form = _service_form(Task, EDITABLE_FIELDS, _task_update)

    def editable(self, obj: Any) -> bool:
        return obj.state not in CLOSED_STATES

    list_display = (
        "title",
        "state",
        "priority",
        "task_type",
        "agency",
        "client",
        "assignee",
        "due_at",
        "created_at",
    )
    list_filter = ("state", "priority", "task_type", "service_area", "agency")
    search_fields = ("=id", "title", "client__username", "assignee__username")
    list_select_related = ("agency", "client", "assignee")
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

    list_display = ("title", "state", "agency", "client", "created_at")
    list_filter = ("state", "agency")
    search_fields = ("=id", "title", "client__username")
    list_select_related = ("agency", "client")
    actions = (
        _plan_transition_action(ActionPlanState.ACTIVE, "activate", "Activate selected plans"),
        _plan_transition_action(ActionPlanState.ARCHIVED, "archive", "Archive selected plans"),
    )

"""Admin building blocks every app's admin uses: view-only model admins and service-backed actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only rows (no add, change or delete, so no Save buttons): they change through services only,
    through admin actions or the API."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    call: Callable[[Any], Any],
    done: str,
) -> None:
    """Call ``call(obj)`` per selected row; one success message, one error message per refusal."""
    succeeded = 0
    for obj in queryset:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message} ({exc.error_code})", level=messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", level=messages.SUCCESS)


def form_value(form: forms.ModelForm, name: str) -> Any:
    """The value the saved row would hold: the cleaned input, or the row's own when the form lacks it."""
    return form.cleaned_data[name] if name in form.cleaned_data else getattr(form.instance, name)


def form_errors_add(form: forms.ModelForm, errors: dict[str, list[str]]) -> None:
    """A service's ``{field: [problems]}`` on the form: on the field when the form has it, else on top."""
    for name, problems in errors.items():
        for problem in problems:
            form.add_error(name if name in form.fields else None, problem)

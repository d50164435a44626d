"""Admin for webhooks: endpoints (agency, subscription, rotate the secret, enable), deliveries with their
attempts (redeliver). Every write goes through ``automation.webhooks.endpoints`` (audited there)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.admin_tools import ReadOnlyAdmin, form_errors_add, form_value, run_for_each

from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .endpoints import (
    EDITABLE,
    endpoint_errors,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)


class _HttpDefaultURLField(forms.URLField):
    # Django's current default scheme, said explicitly: this form is built at import, and an implicit
    # default warns (RemovedInDjango60Warning) at every start instead of once per admin page.
    def __init__(self, **kwargs) -> None:
        super().__init__(assume_scheme="http", **kwargs)


class WebhookEndpointAdminForm(forms.ModelForm):
    """The endpoint rules of the API (URL form, registered event types); the secret is never a field:
    it is generated on creation and on rotation and shown once, in the page's message."""

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "agency", "url", "enabled", "ordered", "event_types")
        field_classes = {"url": _HttpDefaultURLField}

    def clean(self) -> dict:
        data = super().clean() or {}
        values = {name: form_value(self, name) for name in ("url", "event_types")}
        form_errors_add(self, endpoint_errors(values=values))
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointAdminForm
    list_display = (
        "name",
        "agency",
        "url",
        "enabled",
        "ordered",
        "consecutive_failures",
        "disabled_at",
        "updated_at",
    )
    list_filter = ("enabled", "ordered", "agency")
    search_fields = ("name", "url")
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason", "previous_secret_until")
    actions = ("rotate_secret", "enable")

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool
    ) -> None:
        data = dict(form.cleaned_data)
        if "agency" in data:
            data["agency_id"] = data["agency"].pk if data["agency"] is not None else None
        changed = {("agency_id" if name == "agency" else name) for name in form.changed_data}
        values = {name: data[name] for name in EDITABLE if name in data}
        if change:
            webhook_endpoint_update(
                endpoint_id=obj.pk,
                actor=request.user,
                **{k: v for k, v in values.items() if k in changed},
            )
            obj.refresh_from_db()
            return
        created, secret = webhook_endpoint_create(**values, actor=request.user)
        obj.pk = created.pk
        obj.refresh_from_db()
        self.message_user(
            request, f"Signing secret of {created.name!r} (shown only now): {secret}", messages.WARNING
        )

    @admin.action(description="Rotate the signing secret (the old one signs too for the grace period)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint_id in queryset.values_list("pk", flat=True):
            endpoint, secret = webhook_endpoint_rotate_secret(endpoint_id=endpoint_id, actor=request.user)
            self.message_user(
                request, f"New secret of {endpoint.name!r} (shown only now): {secret}", messages.WARNING
            )

    @admin.action(description="Enable (resume paused deliveries in order)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint_id in queryset.values_list("pk", flat=True):
            webhook_endpoint_enable(endpoint_id=endpoint_id, actor=request.user)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s).")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "started_at",
        "outcome",
        "response_status",
        "duration_ms",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "event",
        "status",
        "attempts",
        "response_status",
        "response_ms",
        "next_attempt_at",
    )
    list_filter = ("status", "endpoint")
    list_select_related = ("endpoint", "event")
    raw_id_fields = ("event",)
    inlines = (WebhookAttemptInline,)
    actions = ("replay",)

    @admin.action(description="Redeliver selected deliveries (adds attempts; keeps the log)")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda d: webhook_delivery_redeliver(delivery_id=d.pk, actor=request.user),
            "delivery(ies) queued for redelivery",
        )

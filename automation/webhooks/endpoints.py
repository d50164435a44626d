"""Managing webhook endpoints and redelivering: create, change, rotate the secret, enable (resuming
the paused backlog in order), delete, redeliver. Every write is atomic; messages leave after commit."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from outbox.events import event_types_registered
from polaris.access import manager_scope, require_manager
from polaris.accounts.models import Agency
from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import Conflict, NotFound, ValidationFailed

from ..models import FINISHED_DELIVERY_STATUSES, WebhookDelivery, WebhookEndpoint
from ..tasks import webhook_enqueue
from .transport import secret_generate, url_check_syntax

Status = WebhookDelivery.Status
EDITABLE = ("name", "agency_id", "url", "event_types", "ordered", "enabled")
AUDITED = ("name", "agency_id", "url", "event_types", "ordered", "enabled")


def endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log records of an endpoint (never its secrets)."""
    return audit_snapshot(endpoint, AUDITED)


def endpoint_errors(
    *, values: dict[str, Any], instance: WebhookEndpoint | None = None
) -> dict[str, list[str]]:
    """What is wrong with these field values (URL form, registered event types, unique name)."""
    errors: dict[str, list[str]] = {}
    if "url" in values and (problem := url_check_syntax(values["url"])):
        errors["url"] = [problem]
    if "event_types" in values:
        types = values["event_types"]
        known = set(event_types_registered())
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            errors["event_types"] = ["A list of event type names."]
        elif unknown := sorted(set(types) - known):
            errors["event_types"] = [f"Unknown event type(s): {', '.join(unknown)}."]
    if values.get("agency_id") is not None and not Agency.objects.filter(pk=values["agency_id"]).exists():
        errors["agency"] = [f"Agency {values['agency_id']} does not exist."]
    if "name" in values:
        clash = WebhookEndpoint.objects.filter(name=values["name"])
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            errors["name"] = ["An endpoint with this name already exists."]
    return errors


def endpoint_get(*, endpoint_id: Any, lock: bool = False, user: Any = None) -> WebhookEndpoint:
    """One endpoint in ``user``'s management scope (``None``: the system, every endpoint): a supervisor
    sees their agency's only (others, global ones included, are 404); agents and clients are refused."""
    endpoints = WebhookEndpoint.objects.select_for_update() if lock else WebhookEndpoint.objects
    agency_id = manager_scope(user, "Only administrators and supervisors may manage webhook endpoints.")
    if agency_id is not None:
        endpoints = endpoints.filter(agency_id=agency_id)
    try:
        return endpoints.get(pk=int(endpoint_id))
    except (ValueError, TypeError, WebhookEndpoint.DoesNotExist):
        raise NotFound("Webhook endpoint not found.") from None


@transaction.atomic
def webhook_endpoint_create(
    *,
    name: str,
    url: str,
    agency_id: Any = None,
    event_types: list[str] | None = None,
    ordered: bool = True,
    enabled: bool = True,
    actor: Any = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of ``agency_id`` (``None``: global, admins only) with a fresh secret; returns it
    with the secret (the only time it is shown). ``actor`` must manage that agency."""
    require_manager(actor, agency_id=agency_id)
    values = {
        "name": name,
        "agency_id": agency_id,
        "url": url,
        "event_types": event_types or [],
        "ordered": ordered,
        "enabled": enabled,
    }
    errors = endpoint_errors(values=values)
    if errors:
        raise ValidationFailed(details=errors)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(secret=secret, **values)
    audit_record(
        actor=actor, action="webhook_endpoint.created", obj=endpoint, after=endpoint_snapshot(endpoint)
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(*, endpoint_id: Any, actor: Any = None, **changes: Any) -> WebhookEndpoint:
    """Change name, agency, URL, subscription, ordering or ``enabled``. Enabling resumes the paused
    deliveries in order; disabling pauses the undone ones. ``actor`` must manage the endpoint (404 if
    out of scope) and the agency it moves to."""
    endpoint = endpoint_get(endpoint_id=endpoint_id, lock=True, user=actor)
    if "agency_id" in changes:
        require_manager(actor, agency_id=changes["agency_id"])
    before = endpoint_snapshot(endpoint)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(details={name: ["Not editable."] for name in sorted(unknown)})
    errors = endpoint_errors(values=changes, instance=endpoint)
    if errors:
        raise ValidationFailed(details=errors)
    was_enabled = endpoint.enabled
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if endpoint.enabled and not was_enabled:
        endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
    endpoint.save()
    if endpoint.enabled and not was_enabled:
        _resume(endpoint)
    elif was_enabled and not endpoint.enabled:
        WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(status=Status.PAUSED)
    after = endpoint_snapshot(endpoint)
    if after != before:
        action = "webhook_endpoint.updated"
        if {k for k in after if after[k] != before[k]} == {"enabled"}:
            action = "webhook_endpoint.enabled" if endpoint.enabled else "webhook_endpoint.disabled"
        audit_record(actor=actor, action=action, obj=endpoint, before=before, after=after)
    return endpoint


def webhook_endpoint_enable(*, endpoint_id: Any, actor: Any = None) -> WebhookEndpoint:
    """Enable an endpoint (after a health stop or by hand): its backlog goes out in order."""
    return webhook_endpoint_update(endpoint_id=endpoint_id, enabled=True, actor=actor)


def _resume(endpoint: WebhookEndpoint) -> None:
    paused = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PAUSED)
    paused.update(status=Status.PENDING, next_attempt_at=timezone.now(), round_start=F("attempts"))
    pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING)
    if endpoint.ordered:  # the first of each aggregate; each one wakes the next when it finishes
        heads = list(
            pending.filter(aggregate_id__isnull=False)
            .order_by("aggregate_type", "aggregate_id", "sequence", "id")
            .distinct("aggregate_type", "aggregate_id")
            .values_list("pk", flat=True)
        )
        heads += list(pending.filter(aggregate_id__isnull=True).values_list("pk", flat=True))
    else:
        heads = list(pending.values_list("pk", flat=True))
    for delivery_id in sorted(heads):
        transaction.on_commit(partial(webhook_enqueue, delivery_id), robust=True)


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint_id: Any, grace_seconds: float | None = None, actor: Any = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing beside it for ``grace_seconds``
    (``WEBHOOK_SECRET_ROTATION_GRACE_SECONDS`` by default). Returns the new secret (shown once)."""
    endpoint = endpoint_get(endpoint_id=endpoint_id, lock=True, user=actor)
    grace = settings.WEBHOOK_SECRET_ROTATION_GRACE_SECONDS if grace_seconds is None else grace_seconds
    secret = secret_generate()
    endpoint.previous_secret = endpoint.secret if grace > 0 else ""
    endpoint.previous_secret_until = timezone.now() + timedelta(seconds=grace) if grace > 0 else None
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"])
    # The fact of the rotation, never a value.
    audit_record(
        actor=actor,
        action="webhook_endpoint.secret_rotated",
        obj=endpoint,
        before={"secret": "rotated"},
        after={"secret": "rotated", "previous_secret_until": endpoint.previous_secret_until},
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: Any, actor: Any = None) -> None:
    """Delete an endpoint with its delivery log."""
    endpoint = endpoint_get(endpoint_id=endpoint_id, lock=True, user=actor)
    before = endpoint_snapshot(endpoint)
    pk = endpoint.pk
    endpoint.delete()
    audit_record(
        actor=actor,
        action="webhook_endpoint.deleted",
        object_type="webhookendpoint",
        object_id=pk,
        agency_id=before["agency_id"],
        before=before,
    )


@transaction.atomic
def webhook_delivery_redeliver(*, delivery_id: Any, actor: Any = None) -> WebhookDelivery:
    """Send a finished delivery again: a new round on the retry schedule; earlier attempts are kept.
    A supervisor redelivers only their agency's endpoints' deliveries (others: 404)."""
    deliveries = WebhookDelivery.objects.select_for_update(of=("self",))
    agency_id = manager_scope(actor, "Only administrators and supervisors may redeliver webhooks.")
    if agency_id is not None:
        deliveries = deliveries.filter(endpoint__agency_id=agency_id)
    try:
        delivery = deliveries.get(pk=int(delivery_id))
    except (ValueError, TypeError, WebhookDelivery.DoesNotExist):
        raise NotFound("Webhook delivery not found.") from None
    if delivery.status not in FINISHED_DELIVERY_STATUSES:
        raise Conflict(
            "Only a finished delivery (delivered, failed, refused, dead) can be redelivered.",
            details={"status": delivery.status},
        )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.PENDING, round_start=F("attempts"), next_attempt_at=timezone.now(), locked_until=None
    )
    transaction.on_commit(partial(webhook_enqueue, delivery.pk), robust=True)
    delivery.refresh_from_db()
    return delivery

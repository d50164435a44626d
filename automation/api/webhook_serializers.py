"""Input and output shapes of the webhook-endpoint API (automation.api.webhook_endpoints)."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from polaris.api.query_params import PageQuerySerializer
from polaris.api.strict import StrictFieldsMixin

from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .serializers import EventTypeNameField

# An http(s) URL as RFC 3986 has it (what the representation's ``format: uri`` promises): a host (ASCII
# name or IPv4 address), an optional port 0-65535, no user:password@, path, query and fragment of URI
# characters (others percent-encoded). A subset of what automation.webhooks.transport.url_check_syntax
# allows, checked first (RegexField).
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
URL_PATTERN = (
    rf"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9._~-]+(?::{_PORT})?"
    rf"(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
)


# What the OpenAPI document declares, stricter than URL_PATTERN and read when the document is generated:
# the host a DNS name of 1-63 character labels of letters, digits and hyphens (not at either end), or an
# IPv4 address; the port one of WEBHOOK_ALLOWED_PORTS (any when "*"). The server accepts a little more
# (hosts in WEBHOOK_ALLOWED_HOSTS on any port), never less.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def _declared_url_pattern() -> str:
    ports = [str(p).strip() for p in settings.WEBHOOK_ALLOWED_PORTS]
    port = _PORT if not ports or "*" in ports else "(?:" + "|".join(p for p in ports if p.isdigit()) + ")"
    return (
        rf"^[hH][tT][tT][pP][sS]?://{_LABEL}(?:\.{_LABEL})*\.?(?::{port})?"
        rf"(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
    )


class WebhookUrlField(serializers.RegexField):
    """The endpoint URL: URL_PATTERN checked here, the rest (host form, port) by the endpoint services."""

    def openapi_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "maxLength": 500,
            "pattern": _declared_url_pattern(),
            "description": self.help_text,
        }


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it: never its secret (shown once, on creation and rotation)."""

    agency = serializers.UUIDField(
        source="agency_id", allow_null=True, read_only=True, help_text="null: a global endpoint."
    )

    class Meta:
        model = WebhookEndpoint
        fields: tuple[str, ...] = (
            "id",
            "name",
            "agency",
            "url",
            "event_types",
            "ordered",
            "enabled",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "previous_secret_until",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = fields


class WebhookEndpointSecretSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="whsec_…: shown this once, never again (null in an Idempotency-Key replay).",
    )
    secret_withheld = serializers.BooleanField(
        read_only=True,
        help_text="True in an Idempotency-Key replay: the secret was shown in the first response only.",
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = (*WebhookEndpointOutputSerializer.Meta.fields, "secret", "secret_withheld")
        read_only_fields = fields


class WebhookEndpointInputSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200)
    agency = serializers.UUIDField(
        required=False,
        allow_null=True,
        source="agency_id",
        help_text="The agency whose events it receives; null: global (admins only). A supervisor's "
        "default is their agency, an admin's global.",
    )
    url = WebhookUrlField(
        URL_PATTERN,
        max_length=500,
        error_messages={"invalid": "An http(s) URL with a host and no credentials."},
        help_text="http or https, a well-formed host, a port in WEBHOOK_ALLOWED_PORTS (default 80, 443); "
        "addresses are checked when delivering (SSRF guard).",
    )
    event_types = serializers.ListField(
        child=EventTypeNameField(),
        required=False,
        max_length=100,
        help_text="A subscription: every event of these types in the endpoint's agency is delivered. "
        "Empty: none (only what triggers send).",
    )
    ordered = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)


class WebhookRotateInputSerializer(StrictFieldsMixin, serializers.Serializer):
    grace_seconds = serializers.FloatField(
        required=False, min_value=0, max_value=30 * 86400, help_text="How long the old secret signs too."
    )


class WebhookPingOutputSerializer(serializers.Serializer):
    delivered = serializers.BooleanField()
    response_status = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.FloatField()
    response_excerpt = serializers.CharField()
    error = serializers.CharField()
    webhook_id = serializers.CharField()


class WebhookAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = (
            "number",
            "started_at",
            "outcome",
            "response_status",
            "duration_ms",
            "response_excerpt",
            "error",
        )
        read_only_fields = fields


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    endpoint_id = serializers.IntegerField(read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    attempt_log = WebhookAttemptOutputSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "endpoint_id",
            "event_id",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "last_error",
            "created_at",
            "delivered_at",
            "attempt_log",
        )
        read_only_fields = fields


class WebhookDeliveryFilterSerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)

"""Standard Webhooks: a receiver built on the ``standardwebhooks`` library verifies every delivery,
both secrets verify during a rotation's grace period, and a tampered body or timestamp fails."""

import importlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from automation.models import WebhookEndpoint
from automation.webhooks.delivery import webhook_delivery_attempt, webhook_ping
from automation.webhooks.endpoints import webhook_endpoint_create, webhook_endpoint_rotate_secret
from automation.webhooks.transport import secret_generate, secret_key
from tests.automation.conftest import latest_event
from tests.automation.test_webhooks import delivery_of, loopback_allowed, receiver  # noqa: F401

pytestmark = pytest.mark.django_db


def verifies(request: dict, secret: str) -> bool:
    try:
        Webhook(secret).verify(request["body"], request["headers"])
    except WebhookVerificationError:
        return False
    return True


def test_secrets_have_the_standard_form():
    secret = secret_generate()
    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) == 24
    assert secret_generate() != secret


def test_every_delivery_verifies_with_the_library(make_task, receiver, loopback_allowed):  # noqa: F811
    endpoint, secret = webhook_endpoint_create(name="crm", url=receiver.url)
    events = [latest_event(make_task(title=f"T{i}")) for i in range(3)]
    for event in events:
        webhook_delivery_attempt(delivery_id=delivery_of(endpoint, event).pk)
    assert len(receiver.requests) == 3
    for request, event in zip(receiver.requests, events, strict=True):
        assert verifies(request, secret)
        assert request["headers"]["webhook-id"] == str(event.id)
        assert json.loads(request["body"])["id"] == str(event.id)
    assert not verifies(receiver.requests[0], secret_generate())


def test_a_tampered_body_or_timestamp_fails(make_task, receiver, loopback_allowed):  # noqa: F811
    endpoint, secret = webhook_endpoint_create(name="crm", url=receiver.url)
    webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    [request] = receiver.requests
    assert verifies(request, secret)
    assert not verifies(
        {**request, "body": request["body"].replace(b'"sequence":1', b'"sequence":2')}, secret
    )
    shifted = str(int(request["headers"]["webhook-timestamp"]) - 1)
    assert not verifies({**request, "headers": {**request["headers"], "webhook-timestamp": shifted}}, secret)
    other_id = {**request["headers"], "webhook-id": "00000000-0000-0000-0000-000000000000"}
    assert not verifies({**request, "headers": other_id}, secret)


def test_a_stale_timestamp_fails(make_task, receiver, loopback_allowed):  # noqa: F811
    """The library refuses a message more than five minutes old (replay protection)."""
    endpoint, secret = webhook_endpoint_create(name="crm", url=receiver.url)
    webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    [request] = receiver.requests
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert not verifies(request, secret)


def test_during_the_grace_period_both_secrets_verify_then_only_the_new(make_task, receiver, loopback_allowed):  # noqa: F811
    endpoint, old = webhook_endpoint_create(name="crm", url=receiver.url)
    endpoint, new = webhook_endpoint_rotate_secret(endpoint_id=endpoint.pk, grace_seconds=3600)
    assert new != old
    webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    request = receiver.requests[-1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verifies(request, old)
    assert verifies(request, new)

    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=5)):
        webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    request = receiver.requests[-1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 1
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=5)):
        assert verifies(request, new)
        assert not verifies(request, old)


def test_a_rotation_without_grace_drops_the_old_secret_at_once(make_task, receiver, loopback_allowed):  # noqa: F811
    endpoint, old = webhook_endpoint_create(name="crm", url=receiver.url)
    endpoint, new = webhook_endpoint_rotate_secret(endpoint_id=endpoint.pk, grace_seconds=0)
    webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    assert verifies(receiver.requests[-1], new)
    assert not verifies(receiver.requests[-1], old)


def test_the_ping_is_signed(receiver, loopback_allowed):  # noqa: F811
    endpoint, secret = webhook_endpoint_create(name="crm", url=receiver.url)
    answer = webhook_ping(endpoint=endpoint)
    assert (answer["delivered"], answer["response_status"]) == (True, 200)
    [request] = receiver.requests
    assert verifies(request, secret)
    assert json.loads(request["body"])["event_type"] == "WebhookPing"


def test_a_legacy_secret_becomes_the_same_key_in_whsec_form():
    """The migration's conversion: whsec_ + base64(old secret) keys the HMAC with the old bytes."""
    module = importlib.import_module("automation.migrations.0006_webhooks_standard")
    endpoint = WebhookEndpoint.objects.create(name="old", url="https://example.org/", secret="old-secret-1")
    with connection.cursor() as cursor:
        cursor.execute(module.LEGACY_SECRETS)
    endpoint.refresh_from_db()
    assert endpoint.secret.startswith("whsec_")
    assert secret_key(endpoint.secret) == b"old-secret-1"
    before = endpoint.secret
    with connection.cursor() as cursor:
        cursor.execute(module.LEGACY_SECRETS)  # idempotent: whsec_ secrets are left alone
    endpoint.refresh_from_db()
    assert endpoint.secret == before

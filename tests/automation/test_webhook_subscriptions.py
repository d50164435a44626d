"""``event_types`` is a subscription, and endpoints belong to an agency.

- A subscribed endpoint receives every event of its types in its agency with no trigger: in order per
  aggregate, signed, each once (a second dispatch pass changes nothing).
- An empty ``event_types`` subscribes to nothing.
- A trigger and a subscription selecting the same endpoint make one delivery.
- A trigger's fan-out reaches only endpoints of the event's agency and global ones.
"""

import json

import pytest
from standardwebhooks.webhooks import Webhook

from automation.models import WebhookDelivery
from automation.services import trigger_create
from automation.webhooks.endpoints import webhook_endpoint_create
from outbox.dispatcher import outbox_dispatch
from tests.automation.test_webhooks import loopback_allowed, receiver  # noqa: F401
from tests.automation.webhook_driver import WebhookDriver
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def endpoint(name, url="https://hooks.example.org/h", **fields):
    return webhook_endpoint_create(name=name, url=url, **fields)


def dispatch_and_send(capture) -> list[int]:
    driver = WebhookDriver()
    with driver.patch(), capture(execute=True):
        outbox_dispatch(budget_seconds=10)
    driver.run()
    return sorted(WebhookDelivery.objects.values_list("pk", flat=True))


def test_a_subscribed_endpoint_receives_its_events_in_order_signed_once(
    make_task,
    agent,
    agency,
    receiver,  # noqa: F811
    loopback_allowed,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    hook, secret = endpoint(
        "crm", url=receiver.url, agency_id=agency.pk, event_types=["TaskCreated", "TaskStateChanged"]
    )
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    first = dispatch_and_send(django_capture_on_commit_callbacks)
    assert dispatch_and_send(django_capture_on_commit_callbacks) == first  # a second pass adds nothing

    verifier = Webhook(secret)
    for request in receiver.requests:
        verifier.verify(request["body"], request["headers"])  # raises unless signed with the secret
    bodies = [json.loads(request["body"]) for request in receiver.requests]
    assert [body["event_type"] for body in bodies] == ["TaskCreated", "TaskStateChanged", "TaskStateChanged"]
    assert [body["sequence"] for body in bodies] == [1, 2, 3]
    ids = [body["id"] for body in bodies]
    assert len(ids) == len(set(ids)) == 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert set(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == {hook.pk}


def test_an_empty_subscription_receives_nothing_without_a_trigger(make_task, agency):
    endpoint("quiet", agency_id=agency.pk)
    make_task()
    outbox_dispatch(budget_seconds=10)
    assert not WebhookDelivery.objects.exists()


def test_a_trigger_and_a_subscription_choosing_one_endpoint_make_one_delivery(make_task, agency):
    hook, _ = endpoint("crm", agency_id=agency.pk, event_types=["TaskCreated"])
    trigger_create(
        name="also",
        event_type="TaskCreated",
        agency_id=agency.pk,
        actions=[{"type": "webhook", "params": {"endpoint": hook.pk}}, {"type": "webhook", "params": {}}],
    )
    make_task()
    outbox_dispatch(budget_seconds=10)
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == 1


def test_fan_out_and_subscriptions_stay_inside_the_events_agency(make_task, agency, other_agency):
    _mine, _ = endpoint("mine", agency_id=agency.pk)
    theirs, _ = endpoint("theirs", agency_id=other_agency.pk)
    theirs_subscribed, _ = endpoint("theirs-sub", agency_id=other_agency.pk, event_types=["TaskCreated"])
    _everyone, _ = endpoint("global", agency_id=None)
    trigger_create(
        name="fan-out", event_type="TaskCreated", agency_id=agency.pk, actions=[{"type": "webhook"}]
    )
    make_task()
    outbox_dispatch(budget_seconds=10)
    reached = set(WebhookDelivery.objects.values_list("endpoint__name", flat=True))
    assert reached == {"mine", "global"}
    assert theirs.pk
    assert theirs_subscribed.pk


def test_a_global_subscription_receives_every_agencys_events(
    make_task, agency, other_agency, other_agent, other_client
):
    hook, _ = endpoint("all", agency_id=None, event_types=["TaskCreated"])
    make_task()
    make_task(agency=other_agency, actor=other_agent, assignee=other_agent, client=other_client)
    outbox_dispatch(budget_seconds=10)
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == 2


def test_a_trigger_of_one_agency_may_not_name_another_agencys_endpoint(agency, other_agency):
    from polaris.errors import ValidationFailed

    theirs, _ = endpoint("theirs", agency_id=other_agency.pk)
    with pytest.raises(ValidationFailed) as caught:
        trigger_create(
            name="leak",
            event_type="TaskCreated",
            agency_id=agency.pk,
            actions=[{"type": "webhook", "params": {"endpoint": theirs.pk}}],
        )
    assert "actions" in caught.value.details

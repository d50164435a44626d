"""The webhook management API (admins): the secret shown once, validation, rotation, the test ping,
the delivery log with its attempts, redelivery, Idempotency-Key, and the health re-enable by PATCH."""

import pytest
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.webhooks.delivery import webhook_delivery_attempt
from polaris.idempotency.models import IdempotencyKey
from tests.automation.conftest import latest_event
from tests.automation.test_webhooks import delivery_of, loopback_allowed, receiver  # noqa: F401
from tests.automation.webhook_driver import WebhookDriver

pytestmark = pytest.mark.django_db
BASE = "/api/workflow/webhook-endpoints"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin(admin_user):
    return api(admin_user)


def create(admin, **fields) -> dict:
    response = admin.post(
        BASE, {"name": "crm", "url": "https://crm.example.org/hook", **fields}, format="json"
    )
    assert response.status_code == 201, response.data
    return response.data


def test_the_secret_is_shown_on_creation_only(admin):
    created = create(admin, event_types=["TaskCreated"])
    assert created["secret"].startswith("whsec_")
    assert WebhookEndpoint.objects.get().secret == created["secret"]  # kept: it must still sign
    detail = admin.get(f"{BASE}/{created['id']}")
    listing = admin.get(BASE)
    assert detail.status_code == listing.status_code == 200
    assert "secret" not in detail.data
    assert created["secret"] not in str(listing.content)


def test_the_admin_pages_never_show_the_secret(admin, admin_user, client):
    created = create(admin)
    client.force_login(admin_user)
    page = client.get(f"/admin/automation/webhookendpoint/{created['id']}/change/")
    assert page.status_code == 200
    assert created["secret"].encode() not in page.content


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"url": "ftp://x.example/"}, "url"),
        ({"url": "https://user:pw@x.example/"}, "url"),
        ({"event_types": ["NoSuchEvent"]}, "event_types"),
        ({"event_types": "TaskCreated"}, "event_types"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_400_and_writes_nothing(admin, fields, bad):
    response = admin.post(BASE, {"name": "crm", "url": "https://crm.example.org/", **fields}, format="json")
    assert response.status_code == 400
    assert response.data["error_code"] == "VALIDATION_ERROR"
    assert bad in response.data["details"]
    assert not WebhookEndpoint.objects.exists()


def test_duplicate_names_are_a_400(admin):
    create(admin)
    response = admin.post(BASE, {"name": "crm", "url": "https://x.example.org/"}, format="json")
    assert (response.status_code, "name" in response.data["details"]) == (400, True)


def test_only_admins_manage_endpoints(agent, client_user):
    for user in (agent, client_user):
        assert api(user).get(BASE).status_code == 403
        assert (
            api(user).post(BASE, {"name": "x", "url": "https://x.example/"}, format="json").status_code == 403
        )
    assert WebhookEndpoint.objects.count() == 0


def test_patch_delete_and_unknown_ids(admin):
    created = create(admin)
    response = admin.patch(f"{BASE}/{created['id']}", {"ordered": False, "event_types": []}, format="json")
    assert (response.status_code, response.data["ordered"]) == (200, False)
    assert admin.patch(f"{BASE}/{created['id']}", {"url": "nope"}, format="json").status_code == 400
    assert admin.get(f"{BASE}/999999").status_code == 404
    assert admin.delete(f"{BASE}/{created['id']}").status_code == 204
    assert admin.delete(f"{BASE}/{created['id']}").status_code == 404


def test_rotation_shows_the_new_secret_once_and_both_sign(admin, receiver, loopback_allowed, make_task):  # noqa: F811
    created = create(admin, url=receiver.url)
    rotated = admin.post(f"{BASE}/{created['id']}/rotate-secret", {"grace_seconds": 600}, format="json")
    assert rotated.status_code == 200
    assert rotated.data["secret"] != created["secret"]
    assert rotated.data["previous_secret_until"] is not None
    assert "secret" not in admin.get(f"{BASE}/{created['id']}").data
    endpoint = WebhookEndpoint.objects.get()
    webhook_delivery_attempt(delivery_id=delivery_of(endpoint, latest_event(make_task())).pk)
    [request] = receiver.requests
    for secret in (created["secret"], rotated.data["secret"]):
        Webhook(secret).verify(request["body"], request["headers"])
    bad = admin.post(f"{BASE}/{created['id']}/rotate-secret", {"grace_seconds": -1}, format="json")
    assert bad.status_code == 400


def test_the_test_ping_reports_the_receivers_answer(admin, receiver, loopback_allowed):  # noqa: F811
    created = create(admin, url=receiver.url)
    receiver.statuses.append(418)
    response = admin.post(f"{BASE}/{created['id']}/test")
    assert response.status_code == 200
    assert (response.data["delivered"], response.data["response_status"]) == (False, 418)
    Webhook(created["secret"]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])
    assert not WebhookDelivery.objects.exists()


def test_deliveries_show_every_attempt_and_redelivery_adds_attempts(
    admin,
    receiver,  # noqa: F811
    loopback_allowed,  # noqa: F811
    make_task,
    django_capture_on_commit_callbacks,
):
    created = create(admin, url=receiver.url)
    receiver.statuses.extend([400])
    delivery = delivery_of(WebhookEndpoint.objects.get(), latest_event(make_task()))
    webhook_delivery_attempt(delivery_id=delivery.pk)
    log = admin.get(f"{BASE}/{created['id']}/deliveries")
    assert log.status_code == 200
    [row] = log.data["results"]
    assert (row["status"], [a["outcome"] for a in row["attempt_log"]]) == ("failed", ["failed"])
    assert row["attempt_log"][0]["response_status"] == 400

    url = f"/api/workflow/webhook-deliveries/{delivery.pk}/redeliver"
    driver = WebhookDriver()
    with driver.patch(), django_capture_on_commit_callbacks(execute=True):
        first = admin.post(url, HTTP_IDEMPOTENCY_KEY="k1")
        again = admin.post(url, HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (200, 200, "true")
    driver.run()
    [row] = admin.get(f"{BASE}/{created['id']}/deliveries").data["results"]
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert [a["outcome"] for a in row["attempt_log"]] == ["failed", "delivered"]
    with driver.patch():
        assert admin.post(url).status_code == 200  # delivered is finished: may be sent again
        conflict = admin.post(url)  # now pending: not finished
    assert (conflict.status_code, conflict.data["error_code"]) == (409, "CONFLICT")
    assert admin.get(f"{BASE}/{created['id']}/deliveries", {"status": "bogus"}).status_code == 400
    assert admin.post("/api/workflow/webhook-deliveries/999999/redeliver").status_code == 404


def test_creation_honours_the_idempotency_key_and_a_replay_withholds_the_secret(admin):
    body = {"name": "crm", "url": "https://crm.example.org/"}
    first = admin.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    second = admin.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert first.data["id"] == second.data["id"]
    assert WebhookEndpoint.objects.count() == 1
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    assert first.json()["secret_withheld"] is False
    replayed = second.json()
    assert (replayed["secret"], replayed["secret_withheld"]) == (None, True)
    assert {k: v for k, v in replayed.items() if not k.startswith("secret")} == {
        k: v for k, v in first.json().items() if not k.startswith("secret")
    }
    # The key's record never held it: nothing stored for idempotency carries the secret.
    assert secret not in str(list(IdempotencyKey.objects.values_list("response_body", flat=True)))


def test_a_replayed_rotation_withholds_the_new_secret_and_rotates_once(admin):
    created = create(admin)
    url = f"{BASE}/{created['id']}/rotate-secret"
    first = admin.post(url, {"grace_seconds": 60}, format="json", HTTP_IDEMPOTENCY_KEY="rot")
    second = admin.post(url, {"grace_seconds": 60}, format="json", HTTP_IDEMPOTENCY_KEY="rot")
    assert (first.status_code, second.status_code, second["Idempotent-Replayed"]) == (200, 200, "true")
    new_secret = first.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != created["secret"]
    assert (second.json()["secret"], second.json()["secret_withheld"]) == (None, True)
    assert WebhookEndpoint.objects.get().secret == new_secret  # rotated once, not twice
    assert new_secret not in str(list(IdempotencyKey.objects.values_list("response_body", flat=True)))


def test_a_replayed_patch_answers_the_first_response_and_changes_nothing_again(admin):
    created = create(admin)
    url = f"{BASE}/{created['id']}"
    first = admin.patch(url, {"name": "crm-eu"}, format="json", HTTP_IDEMPOTENCY_KEY="ren")
    assert (first.status_code, first.json()["name"]) == (200, "crm-eu")
    assert admin.patch(url, {"name": "crm-us"}, format="json").status_code == 200  # changed since
    again = admin.patch(url, {"name": "crm-eu"}, format="json", HTTP_IDEMPOTENCY_KEY="ren")
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (200, "true", first.json())
    assert WebhookEndpoint.objects.get().name == "crm-us"  # the replay did not rename it back
    reused = admin.patch(url, {"enabled": False}, format="json", HTTP_IDEMPOTENCY_KEY="ren")
    assert (reused.status_code, reused.json()["error_code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert WebhookEndpoint.objects.get().enabled is True


def test_a_replayed_redelivery_queues_the_delivery_once(admin, make_task, django_capture_on_commit_callbacks):
    create(admin)
    delivery = delivery_of(WebhookEndpoint.objects.get(), latest_event(make_task()), status="dead")
    url = f"/api/workflow/webhook-deliveries/{delivery.pk}/redeliver"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = admin.post(url, HTTP_IDEMPOTENCY_KEY="again")
        again = admin.post(url, HTTP_IDEMPOTENCY_KEY="again")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (200, 200, "true")
    assert again.json() == first.json()
    assert len(queued) == 1  # one new round, one message: the replay queued nothing


def test_patch_enabled_resumes_paused_deliveries(admin, make_task, django_capture_on_commit_callbacks):
    created = create(admin)
    endpoint = WebhookEndpoint.objects.get()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, consecutive_failures=20)
    delivery = delivery_of(endpoint, latest_event(make_task()), status="paused")
    driver = WebhookDriver()
    with driver.patch(), django_capture_on_commit_callbacks(execute=True):
        response = admin.patch(f"{BASE}/{created['id']}", {"enabled": True}, format="json")
    assert (response.status_code, response.data["consecutive_failures"]) == (200, 0)
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert [item[2] for item in driver.queue] == [delivery.pk]

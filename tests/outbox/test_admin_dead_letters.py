"""Dead letters in admin: the list shows the last error (cut short), the event's page shows it whole and
has a Replay button (POST + CSRF, the replay service: admins only, audited, dead events only)."""

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from outbox.models import OutboxEvent
from polaris.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

ERROR = (
    "Traceback (most recent call last):\n  File handler.py, line 3\nConnectionError: " + "x" * 300 + " END"
)


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def dead_event(make_task):
    task = make_task()
    event = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=1)
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.DEAD, attempts=10, last_error=ERROR
    )
    return event


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_list_shows_the_last_error_cut_short(admin_client, dead_event):
    html = admin_client.get(
        reverse("admin:outbox_outboxevent_changelist") + "?status__exact=dead"
    ).content.decode()
    assert "Last error" in html
    cell = re.search(r'<span class="last-error" title="([^"]*)">([^<]*)</span>', html)
    assert cell is not None
    full, shown = cell.groups()
    assert shown.startswith("Traceback (most recent call last): File handler.py, line 3")
    assert shown.endswith("…")
    assert len(shown) <= 80
    assert full.endswith("x" * 300 + " END")  # the whole text is the cell's tooltip


def test_the_page_shows_the_whole_error_and_replays(admin_client, dead_event, admin_user):
    page = admin_client.get(reverse("admin:outbox_outboxevent_change", args=[dead_event.pk]))
    html = page.content.decode()
    assert 'id="event-last-error"' in html
    assert "x" * 300 + " END" in html
    assert 'id="event-replay"' in html

    url = reverse("admin:outbox_outboxevent_replay", args=[dead_event.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, follow=True)
    assert any("queued for replay" in m for m in messages_of(response))
    stored = OutboxEvent.objects.get(pk=dead_event.pk)
    assert (stored.status, stored.attempts) == ("pending", 0)
    assert AuditEntry.objects.filter(action="event.replayed", object_id=str(dead_event.pk)).count() == 1

    # No longer dead: no button, and a second POST is a message, not a change.
    assert 'id="event-replay"' not in response.content.decode()
    again = admin_client.post(url, follow=True)
    assert any("CONFLICT" in m for m in messages_of(again))
    assert AuditEntry.objects.filter(action="event.replayed").count() == 1


def test_replay_needs_csrf_and_a_known_event(admin_user, dead_event):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("admin:outbox_outboxevent_replay", args=[dead_event.pk])).status_code == 403
    assert OutboxEvent.objects.get(pk=dead_event.pk).status == "dead"
    plain = Client()
    plain.force_login(admin_user)
    assert plain.post(reverse("admin:outbox_outboxevent_replay", args=["not-an-id"])).status_code == 404


def test_agency_staff_cannot_replay(agent, dead_event):
    client = Client()
    client.force_login(agent)
    response = client.post(reverse("admin:outbox_outboxevent_replay", args=[dead_event.pk]))
    assert response.status_code == 302
    assert OutboxEvent.objects.get(pk=dead_event.pk).status == "dead"

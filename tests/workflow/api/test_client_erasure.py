"""Erasing a client: a unique marker planted in every free-text field of the client's work is found nowhere
afterwards (every text and JSON column of every table is scanned), while every event stays, every
aggregate's sequence stays gap-free, and states and SLA figures survive. A dry run changes nothing."""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automation.models import (
    Alert,
    Trigger,
    TriggerExecution,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from outbox.dispatcher import outbox_dispatch_batch
from outbox.models import OutboxEvent
from polaris.accounts.models import User
from sla.models import SLARecord
from sla.scan import sla_scan
from tests.support.api import assert_envelope, bearer_client
from workflow.models import ActionPlan, Task
from workflow.services.tasks import task_transition, task_update

pytestmark = pytest.mark.django_db

MARK = "zqx-erase-marker-41"
OTHER_MARK = "zqx-keep-marker-97"
TEXT_TYPES = ("text", "character varying", "json", "jsonb")


def marker_hits(marker: str) -> dict[str, int]:
    """``{"table.column": rows}`` for every text or JSON column of every table holding ``marker``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s)",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        hits = {}
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                [f"%{marker}%"],
            )
            if count := cursor.fetchone()[0]:
                hits[f"{table}.{column}"] = count
    return hits


def streams() -> dict[tuple[str, str], list[int]]:
    by_aggregate = defaultdict(list)
    for kind, aggregate_id, sequence in OutboxEvent.objects.values_list(
        "aggregate_type", "aggregate_id", "sequence"
    ):
        by_aggregate[(kind, str(aggregate_id))].append(sequence)
    return {key: sorted(value) for key, value in by_aggregate.items()}


@pytest.fixture
def planted(agent, agent_api, client_user, make_plan, make_task, agency, other_agent, other_client):
    """The client's work with the marker in every free-text field; another client's with another marker."""
    client_user.first_name, client_user.last_name = f"Cleo {MARK}", MARK
    client_user.email, client_user.username = f"{MARK}@example.org", f"cleo-{MARK}"
    client_user.save()
    plan = make_plan(title=f"Plan {MARK}", description=f"Plan notes {MARK}")
    # Created through the API with a key: the stored idempotent response holds the title too.
    response = agent_api.post(
        "/api/workflow/tasks",
        {"title": f"Intake {MARK}", "task_type": "intake", "client": client_user.pk, "assignee": agent.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="erase-1",
    )
    assert response.status_code == 201, response.json()
    task = Task.objects.get(pk=response.json()["id"])
    task_update(
        task_id=task.pk,
        actor=agent,
        changes={
            "description": f"Lives at {MARK} street",
            "title": f"Intake again {MARK}",
            "action_plan": plan,
        },
    )
    task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason=f"Waiting on {MARK}")
    second = Task.objects.get(
        pk=agent_api.post(
            "/api/workflow/tasks",
            {"title": f"Second {MARK}", "task_type": "intake", "client": client_user.pk},
            format="json",
        ).json()["id"]
    )
    task_transition(task_id=second.pk, target_state="cancelled", actor=agent, reason=f"Moved away {MARK}")
    # An SLA breach (a third, running task): SLA events carry the task's facts (its title).
    make_task(title=f"Third {MARK}")
    sla_scan(now=timezone.now() + timedelta(days=30))
    events = list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))
    dead = events[0]
    OutboxEvent.objects.filter(pk=dead.pk).update(status="dead", last_error=f"KeyError: {MARK}")
    endpoint = WebhookEndpoint.objects.create(name="crm", url="https://crm.example.org/", secret="whsec_AAAA")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=events[1], status="dead", last_error=f"500: {MARK}"
    )
    WebhookAttempt.objects.create(
        delivery=delivery, number=1, outcome="dead", response_excerpt=f'{{"echo": "{MARK}"}}', error=MARK
    )
    trigger = Trigger.objects.create(name="probe", event_type="TaskUpdated")
    TriggerExecution.objects.create(
        trigger=trigger,
        event=events[1],
        outcome="error",
        error=f"bad {MARK}",
        action_results=[{"message": MARK}],
    )
    Alert.objects.create(message=f"Look at {MARK}", agency=agency, event=events[2])
    # Another client's work must keep its own words.
    kept = bearer_client(other_agent).post(
        "/api/workflow/tasks",
        {"title": f"Theirs {OTHER_MARK}", "task_type": "intake", "client": other_client.pk},
        format="json",
    )
    assert kept.status_code == 201, kept.json()
    return {"task": task, "second": second, "plan": plan, "kept": kept}


def test_erasure_reaches_every_copy_and_keeps_every_event(planted, admin_api, client_user, settings):
    before_hits = marker_hits(MARK)
    # The marker is everywhere the brief lists, so a 0 afterwards means something.
    for column in (
        "workflow_task.title",
        "workflow_task.description",
        "workflow_task.blocked_reason",
        "workflow_actionplan.title",
        "workflow_actionplan.description",
        "outbox_outboxevent.payload",
        "outbox_outboxevent.last_error",
        "automation_webhookdelivery.last_error",
        "automation_webhookattempt.response_excerpt",
        "automation_triggerexecution.error",
        "automation_alert.message",
        "idempotency_idempotencykey.response_body",
        "accounts_user.username",
        "accounts_user.email",
    ):
        assert before_hits.get(column), (column, before_hits)
    assert OutboxEvent.objects.filter(aggregate_type="sla_record", payload__client_id=client_user.pk).exists()
    streams_before = streams()
    states = dict(Task.objects.values_list("pk", "state"))
    sla_before = list(
        SLARecord.objects.values_list("pk", "status", "due_at", "breached_at", "paused_seconds")
    )
    kept_before = marker_hits(OTHER_MARK)

    response = admin_api.post(f"/api/workflow/clients/{client_user.pk}/erase", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["success"], body["dry_run"]) == (True, False)
    assert body["event_id"]
    assert (body["counts"]["workflow_task"], body["counts"]["workflow_actionplan"]) == (3, 1)
    assert body["counts"]["accounts_user"] == 1

    assert marker_hits(MARK) == {}
    assert marker_hits(OTHER_MARK) == kept_before
    # Every event is still there, in gap-free sequences; one ClientErased is added.
    after = streams()
    erased_stream = ("client", str(OutboxEvent.objects.get(pk=body["event_id"]).aggregate_id))
    assert after.pop(erased_stream) == [1]
    assert after == streams_before
    for sequences in after.values():
        assert sequences == list(range(1, len(sequences) + 1))
    assert dict(Task.objects.values_list("pk", "state")) == states
    assert (
        list(SLARecord.objects.values_list("pk", "status", "due_at", "breached_at", "paused_seconds"))
        == sla_before
    )
    erased = OutboxEvent.objects.get(pk=body["event_id"])
    assert erased.event_type == "ClientErased"
    assert erased.payload == {"client_id": client_user.pk, "counts": body["counts"]}
    user = User.objects.get(pk=client_user.pk)
    assert (user.is_active, user.username, user.email, user.has_usable_password()) == (
        False,
        f"erased-{client_user.pk}",
        "",
        False,
    )
    # The account can no longer sign in; its work is still there, still the client's.
    assert (Task.objects.filter(client=user).count(), ActionPlan.objects.filter(client=user).count()) == (
        3,
        1,
    )
    # Erasing again changes nothing but records the request.
    again = admin_api.post(f"/api/workflow/clients/{client_user.pk}/erase", {}, format="json").json()
    assert set(again["counts"].values()) == {0}
    assert streams()[erased_stream] == [1, 2]


def test_a_dry_run_counts_and_changes_nothing(planted, admin_api, client_user):
    hits = marker_hits(MARK)
    total = OutboxEvent.objects.count()
    response = admin_api.post(
        f"/api/workflow/clients/{client_user.pk}/erase", {"dry_run": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["dry_run"], body["event_id"]) == (True, None)
    assert body["counts"]["workflow_task"] == 3
    assert body["counts"]["outbox_events"] > 0
    assert body["counts"]["sla_events"] > 0
    for kind in (
        "webhook_deliveries",
        "webhook_attempts",
        "trigger_executions",
        "alerts",
        "idempotency_keys",
    ):
        assert body["counts"][kind] == 1, kind
    assert marker_hits(MARK) == hits
    assert OutboxEvent.objects.count() == total
    # The real run changes exactly what the dry run counted.
    real = admin_api.post(f"/api/workflow/clients/{client_user.pk}/erase", {}, format="json").json()
    assert real["counts"] == body["counts"]


def test_client_erased_reaches_subscribers(admin_user, client_user, agency):
    from workflow.services.erasure import client_erase

    Trigger.objects.create(
        name="on erasure",
        event_type="ClientErased",
        actions=[{"type": "emit_alert", "params": {"message": "client erased"}}],
    )
    result = client_erase(client_id=client_user.pk, actor=admin_user)
    event = OutboxEvent.objects.get(pk=result["event_id"])
    outbox_dispatch_batch(events=[event])
    assert Alert.objects.filter(event=event, message="client erased").exists()


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("supervisor", 403, "PERMISSION_DENIED"),
        ("agent", 403, "PERMISSION_DENIED"),
        ("client_user", 403, "PERMISSION_DENIED"),
        ("other_supervisor", 403, "PERMISSION_DENIED"),
        ("anonymous", 401, "NOT_AUTHENTICATED"),
    ],
)
def test_only_admins_erase(who, status, code, request, client_user):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    response = bearer_client(user).post(
        f"/api/workflow/clients/{client_user.pk}/erase", {"dry_run": True}, format="json"
    )
    assert_envelope(response, status, code)
    assert User.objects.get(pk=client_user.pk).is_active


def test_unknown_clients_and_bad_bodies(admin_api, agent, client_user):
    for target in (agent.pk, 999_999, "abc", 10**30):
        assert_envelope(
            admin_api.post(f"/api/workflow/clients/{target}/erase", {}, format="json"), 404, "NOT_FOUND"
        )
    assert_envelope(
        admin_api.post(
            f"/api/workflow/clients/{client_user.pk}/erase", {"dry_run": "yes", "x": 1}, format="json"
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert User.objects.get(pk=client_user.pk).is_active

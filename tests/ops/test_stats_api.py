"""GET /api/workflow/stats: admins see every agency, agency staff their own, clients are refused."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from automation.models import Trigger, TriggerExecution, WebhookDelivery, WebhookEndpoint
from outbox.models import OutboxEvent
from sla.models import SLAConfig, SLARecord
from tests.factories import AgentFactory, ClientFactory
from workflow.services.tasks import task_create, task_transition

URL = "/api/workflow/stats"


@pytest.fixture
def sla_config(db):
    # Outranks the default configs for these tasks (area and type both match).
    return SLAConfig.objects.create(
        name="Housing intake", service_area="housing", task_type="intake", target_minutes=60
    )


@pytest.fixture
def workload(sla_config, make_task, make_plan, agent, other_agency):
    """North Star: 2 new, 1 in progress, 1 plan; Southern Cross: 1 new task."""
    make_task()
    make_task(title="Second")
    started = make_task(title="Started")
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)
    make_plan()
    other_agent = AgentFactory(username="oscar-other", agency=other_agency)
    task_create(
        actor=other_agent,
        title="Elsewhere",
        task_type="intake",
        service_area="housing",
        client=ClientFactory(username="odile-client", agency=other_agency),
        agency=other_agency,
    )
    return started


def get(api, user, url=URL):
    api.force_authenticate(user)
    return api.get(url)


def test_admin_sees_every_agency(api, admin_user, workload):
    response = get(api, admin_user)
    body = response.json()
    assert response.status_code == 200, body
    assert body["scope"] == "global"
    assert body["agency_id"] is None
    assert body["tasks"] == {"new": 3, "in_progress": 1, "blocked": 0, "completed": 0, "cancelled": 0}
    assert body["action_plans"] == {"draft": 1, "active": 0, "archived": 0}
    assert body["sla"] == {"running": 4, "paused": 0, "at_risk": 0, "breached": 0}
    # 4 TaskCreated + 1 TaskStateChanged + 1 ActionPlanCreated, none dispatched in this transaction.
    assert body["outbox"]["pending"] == OutboxEvent.objects.count() == 6
    assert body["outbox"]["dead"] == 0
    assert body["outbox"]["oldest_pending_age_seconds"] >= 0
    assert body["automation"] == {"trigger_executions_24h": 0, "webhook_failures_24h": 0}


def test_agency_staff_see_their_agency_only(api, agent, agency, workload):
    body = get(api, agent).json()
    assert body["scope"] == "agency"
    assert body["agency_id"] == str(agency.pk)
    assert body["tasks"]["new"] == 2
    assert body["tasks"]["in_progress"] == 1
    assert body["sla"]["running"] == 3
    assert body["outbox"]["pending"] == 5  # the other agency's TaskCreated is not counted


def test_other_agency_staff_see_only_theirs(api, other_agent, workload):
    body = get(api, other_agent).json()
    assert body["tasks"]["new"] == 1
    assert body["tasks"]["in_progress"] == 0
    assert body["action_plans"]["draft"] == 0
    assert body["outbox"]["pending"] == 1


def test_clients_are_refused_with_the_error_envelope(api, client_user):
    response = get(api, client_user)
    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"]
    assert body["details"] == {}


@pytest.mark.django_db
def test_anonymous_callers_are_not_authenticated(api):
    response = api.get(URL)
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_trailing_slash_is_optional(api, admin_user, workload):
    assert get(api, admin_user, URL + "/").status_code == 200


def test_sla_at_risk_and_breached(api, admin_user, workload, sla_config):
    records = SLARecord.objects.order_by("started_at")
    SLARecord.objects.filter(pk=records[0].pk).update(status="breached", breached_at=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(minutes=61), tick=False):
        body = get(api, admin_user).json()
    # Past the 60-minute target every running clock is at risk until the scan records the breach.
    assert body["sla"] == {"running": 3, "paused": 0, "at_risk": 3, "breached": 1}


def test_dead_events_oldest_pending_age_and_automation_last_24h(api, admin_user, workload, agent):
    now = timezone.now()
    events = list(OutboxEvent.objects.order_by("occurred_at"))
    OutboxEvent.objects.filter(pk=events[0].pk).update(status="dead")
    OutboxEvent.objects.filter(pk=events[1].pk).update(occurred_at=now - timedelta(minutes=5))
    trigger = Trigger.objects.create(name="Ops stats", event_type="TaskCreated", predicate="True", actions=[])
    TriggerExecution.objects.create(trigger=trigger, event=events[2], outcome="matched")
    TriggerExecution.objects.create(
        trigger=trigger, event=events[3], outcome="matched", created_at=now - timedelta(hours=25)
    )
    endpoint = WebhookEndpoint.objects.create(name="Ops", url="https://hooks.example.com/x", secret="s3cret")
    WebhookDelivery.objects.create(endpoint=endpoint, event=events[2], status="dead")
    WebhookDelivery.objects.create(endpoint=endpoint, event=events[3], status="refused")
    WebhookDelivery.objects.create(endpoint=endpoint, event=events[4], status="delivered")
    # Another endpoint: an event reaches one endpoint once (unique (endpoint, event)).
    earlier = WebhookEndpoint.objects.create(name="Ops 2", url="https://hooks.example.com/y", secret="s3cret")
    WebhookDelivery.objects.create(
        endpoint=earlier, event=events[4], status="failed", created_at=now - timedelta(days=2)
    )

    body = get(api, admin_user).json()

    assert body["outbox"]["dead"] == 1
    assert body["outbox"]["pending"] == 5
    assert 300 <= body["outbox"]["oldest_pending_age_seconds"] < 360
    assert body["automation"] == {"trigger_executions_24h": 1, "webhook_failures_24h": 2}


def test_the_endpoint_is_in_the_openapi_schema(api, admin_user):
    api.force_authenticate(admin_user)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/workflow/stats/"]["get"]  # spectacular shows "/?$" as "/"
    assert operation["operationId"] == "workflow_stats"
    assert {"200", "401", "403"} <= set(operation["responses"])

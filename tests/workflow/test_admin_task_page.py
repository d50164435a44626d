"""The admin task page: lifecycle buttons through the API's transition service (block asks for a reason,
guard failures and stale pages are messages, POST + CSRF only), the event history, the SLA and timer
panels, the date-time picker and the assignee chooser limited to the task's agency staff."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.http import Http404
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from automation.models import Trigger, TriggerTimer
from ops.templatetags.ops_task_page import TIMERS_LIMIT, task_timers_panel
from outbox.models import OutboxEvent
from sla.models import SLAConfig, SLARecord
from tests.factories import AgentFactory, SupervisorFactory
from workflow.admin import TaskAdmin, task_assignee_choices
from workflow.admin_task_page import task_history, task_transition_view
from workflow.models import Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def intake_sla(db):
    """The default intake SLA (60 min), a data migration's row: a transactional test elsewhere may have
    flushed it (as tests/sla/conftest.py says)."""
    config, _ = SLAConfig.objects.get_or_create(
        task_type="intake",
        service_area="",
        active=True,
        defaults={"name": "Intake (default)", "target_minutes": 60},
    )
    return config


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def page_url(task):
    return reverse("admin:workflow_task_change", args=[task.pk])


def transition_url(task, target):
    return reverse("admin:workflow_task_transition", args=[task.pk, target])


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_page_offers_the_transitions_the_task_can_take(admin_client, make_task):
    task = make_task()  # new, assigned
    html = admin_client.get(page_url(task)).content.decode()
    for target in ("in_progress", "blocked", "cancelled"):
        assert f'id="task-transition-{target}"' in html
    assert 'id="task-transition-completed"' not in html  # no edge new -> completed
    assert f'href="{transition_url(task, "blocked")}"' in html  # block asks first (a page, not a POST)
    assert html.count("csrfmiddlewaretoken") >= 3  # every button is its own POST form


def test_start_goes_through_the_transition_service(admin_client, make_task, admin_user):
    task = make_task()
    response = admin_client.post(transition_url(task, "in_progress"), {"read_version": task.version})
    assert response.status_code == 302
    assert response["Location"] == page_url(task)
    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.version) == ("in_progress", 2)
    event = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2)
    assert event.event_type == "TaskStateChanged"
    assert (event.payload["old_state"], event.payload["new_state"]) == ("new", "in_progress")
    assert event.actor_id == admin_user.pk
    # The SLA receiver ran in the same transaction, as it does for the API.
    assert SLARecord.objects.get(task=task).status == "running"
    assert any("In progress" in m for m in messages_of(admin_client.get(page_url(task))))


def test_each_button_moves_the_task(admin_client, make_task):
    task = make_task()
    for target in ("in_progress", "completed"):
        current = Task.objects.get(pk=task.pk)
        admin_client.post(transition_url(task, target), {"read_version": current.version})
        assert Task.objects.get(pk=task.pk).state == target
    cancelled = make_task()
    admin_client.post(transition_url(cancelled, "cancelled"), {"read_version": 1})
    assert Task.objects.get(pk=cancelled.pk).state == "cancelled"
    # A closed task offers nothing.
    assert "No transition from" in admin_client.get(page_url(cancelled)).content.decode()


def test_block_asks_for_a_reason_and_resume_clears_it(admin_client, make_task):
    task = make_task()
    form = admin_client.get(transition_url(task, "blocked"))
    assert form.status_code == 200
    assert 'name="reason"' in form.content.decode()
    assert Task.objects.get(pk=task.pk).state == "new"  # asking wrote nothing

    empty = admin_client.post(transition_url(task, "blocked"), {"reason": "  ", "read_version": 1})
    assert empty.status_code == 200
    assert "errornote" in empty.content.decode()
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1

    too_long = admin_client.post(transition_url(task, "blocked"), {"reason": "x" * 2001, "read_version": 1})
    assert too_long.status_code == 200
    assert Task.objects.get(pk=task.pk).state == "new"

    done = admin_client.post(
        transition_url(task, "blocked"),
        {"reason": "Waiting for the landlord's letter", "internal": "on", "read_version": 1},
    )
    assert done.status_code == 302
    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.blocked_reason, stored.blocked_reason_internal) == (
        "blocked",
        "Waiting for the landlord's letter",
        True,
    )
    event = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2)
    assert event.payload["reason"] == "Waiting for the landlord's letter"
    assert event.payload["reason_internal"] is True
    html = admin_client.get(page_url(task)).content.decode()
    assert "Waiting for the landlord&#x27;s letter" in html
    assert 'id="task-transition-in_progress"' in html  # resume

    admin_client.post(transition_url(task, "in_progress"), {"read_version": 2})
    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.blocked_reason) == ("in_progress", "")


def test_a_guard_failure_is_a_message_and_writes_nothing(admin_client, make_task):
    task = make_task(assignee=None)
    html = admin_client.get(page_url(task)).content.decode()
    assert "needs: assign someone first" in html  # the start button is shown disabled, with why

    response = admin_client.post(transition_url(task, "in_progress"), {"read_version": 1}, follow=True)
    assert response.status_code == 200
    assert any("GUARD_FAILED" in m and "assign someone first" in m for m in messages_of(response))
    assert Task.objects.get(pk=task.pk).state == "new"
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1


def test_bad_targets_stale_pages_and_get_are_refused_without_writing(admin_client, make_task, agent):
    task = make_task()
    invalid = admin_client.post(transition_url(task, "completed"), {"read_version": 1}, follow=True)
    assert any("INVALID_TRANSITION" in m for m in messages_of(invalid))
    nonsense = admin_client.post(transition_url(task, "nonsense"), {"read_version": 1}, follow=True)
    assert any("INVALID_TRANSITION" in m for m in messages_of(nonsense))

    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)  # another tab moved it
    stale = admin_client.post(transition_url(task, "cancelled"), {"read_version": 1}, follow=True)
    assert any("PRECONDITION_FAILED" in m for m in messages_of(stale))
    assert Task.objects.get(pk=task.pk).state == "in_progress"

    assert admin_client.get(transition_url(task, "cancelled")).status_code == 405
    for version in ({"read_version": "x"}, {}):
        refused = admin_client.post(transition_url(task, "cancelled"), version, follow=True)
        assert any("Reload the page" in m for m in messages_of(refused))
    assert (
        admin_client.get(reverse("admin:workflow_task_transition", args=["not-a-uuid", "x"])).status_code
        == 404
    )
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 2


def test_buttons_need_the_csrf_token(admin_user, make_task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    task = make_task()
    assert client.post(transition_url(task, "in_progress"), {"read_version": 1}).status_code == 403
    assert Task.objects.get(pk=task.pk).state == "new"


def test_the_history_is_newest_first_and_bounded(admin_client, make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason="Papers missing")
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    html = admin_client.get(page_url(task)).content.decode()
    history = html[html.index('id="task-history"') :]
    assert history.index("new → blocked") > history.index("blocked → in_progress")
    assert "reason: Papers missing" in history
    assert "TaskCreated" in history

    # The link to the whole history opens the outbox list filtered to this task.
    full = admin_client.get(reverse("admin:outbox_outboxevent_changelist") + f"?aggregate_id={task.pk}")
    assert full.status_code == 200
    assert full.content.decode().count('name="_selected_action"') == 3

    rows, more = task_history(task=task, limit=2)
    assert [row.event.sequence for row in rows] == [3, 2]
    assert more is True
    assert task_history(task=task, limit=3)[1] is False


def test_the_sla_panel_highlights_at_risk_and_breached(admin_client, make_task):
    task = make_task()  # intake: the default SLA config (60 min) applies
    html = admin_client.get(page_url(task)).content.decode()
    assert 'id="task-sla-status">Running<' in html
    assert "task-sla-running" in html

    SLARecord.objects.filter(task=task).update(due_at=timezone.now() - timedelta(minutes=5))
    html = admin_client.get(page_url(task)).content.decode()
    assert 'id="task-sla-status">At risk<' in html
    assert "task-sla-at-risk" in html

    SLARecord.objects.filter(task=task).update(status="breached", breached_at=timezone.now())
    html = admin_client.get(page_url(task)).content.decode()
    assert 'id="task-sla-status">Breached<' in html
    assert "task-sla-breached" in html

    no_sla = make_task(task_type="home-visit")
    assert "No SLA applies" in admin_client.get(page_url(no_sla)).content.decode()


def test_the_timers_panel_lists_the_tasks_timers(admin_client, admin_user, make_task):
    task = make_task()
    other = make_task()
    trigger = Trigger.objects.create(name="Chase the landlord", event_type="TaskCreated", wait_minutes=60)
    for owner in (task, other):
        event = OutboxEvent.objects.get(aggregate_id=owner.pk, sequence=1)
        TriggerTimer.objects.create(
            trigger=trigger,
            event=event,
            aggregate_type="task",
            aggregate_id=owner.pk,
            task=owner,
            due_at=timezone.now() + timedelta(hours=1),
        )
    html = admin_client.get(page_url(task)).content.decode()
    timers = html[html.index('id="task-timers"') : html.index('id="task-history"')]
    assert timers.count("Chase the landlord") == 1
    assert "Pending" in timers
    assert "No timers." in admin_client.get(page_url(make_task())).content.decode()
    request = RequestFactory().get("/")
    request.user = admin_user
    listed = admin_client.get(task_timers_panel({"request": request}, task)["timers_url"])
    assert listed.status_code == 200
    assert re.search(r'<p class="paginator">\s*1 trigger timer\s', listed.content.decode())


def test_due_at_has_the_date_and_time_pickers_and_saves_through_the_service(admin_client, make_task):
    task = make_task()
    html = admin_client.get(page_url(task)).content.decode()
    assert 'name="due_at_0"' in html
    assert "vDateField" in html
    assert "vTimeField" in html
    assert "admin/js/calendar.js" in html
    assert "DateTimeShortcuts.js" in html
    response = admin_client.post(
        page_url(task),
        {
            "title": task.title,
            "description": "",
            "priority": task.priority,
            "due_at_0": "2031-03-04",
            "due_at_1": "09:30:00",
            "assignee": task.assignee_id,
            "action_plan": "",
            "service_area": task.service_area,
            "task_type": task.task_type,
            "staff_notes": "",
            "read_version": task.version,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Task.objects.get(pk=task.pk)
    assert timezone.localtime(stored.due_at).strftime("%Y-%m-%d %H:%M") == "2031-03-04 09:30"
    assert OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2).event_type == "TaskUpdated"


def test_the_assignee_chooser_lists_the_tasks_agency_staff_only(
    admin_client, make_task, agent, supervisor, client_user, other_agent, admin_user
):
    away = AgentFactory(username="ines-inactive", agency=agent.agency, is_active=False)
    task = make_task(assignee=None)
    choices = set(task_assignee_choices(task))
    assert choices == {agent, supervisor}
    assert not {client_user, other_agent, admin_user, away} & choices

    html = admin_client.get(page_url(task)).content.decode()
    chooser = html[html.index('name="assignee"') : html.index("</select>", html.index('name="assignee"'))]
    assert agent.username in chooser
    assert supervisor.username in chooser
    assert other_agent.username not in chooser
    assert client_user.username not in chooser

    # Server-side too: a hand-made POST naming another agency's agent is refused, nothing written.
    response = admin_client.post(
        page_url(task),
        {
            "title": task.title,
            "description": "",
            "priority": task.priority,
            "due_at_0": "",
            "due_at_1": "",
            "assignee": other_agent.pk,
            "action_plan": "",
            "service_area": task.service_area,
            "task_type": task.task_type,
            "staff_notes": "",
            "read_version": task.version,
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Task.objects.get(pk=task.pk).assignee_id is None
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1


def test_an_admin_assignee_stays_listed_on_that_task(make_task, admin_user, agent):
    task = make_task(assignee=admin_user)
    assert set(task_assignee_choices(task)) == {admin_user, agent}


def test_agency_staff_cannot_open_another_agencys_task(make_task, other_agent, other_supervisor, agent):
    task = make_task()  # agency A's
    for user in (other_agent, agent):
        client = Client()
        client.force_login(user)
        # Agents are refused the admin site: sent to the login page (302), whatever the task, and a
        # button's POST does nothing.
        assert client.get(page_url(task)).status_code == 302
        response = client.post(transition_url(task, "cancelled"), {"read_version": 1})
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    # B's supervisor is admitted for B's tasks: A's task is not found, page and button alike.
    client = Client()
    client.force_login(other_supervisor)
    assert client.get(page_url(task)).status_code == 404
    assert client.post(transition_url(task, "cancelled"), {"read_version": 1}).status_code == 404
    assert Task.objects.get(pk=task.pk).state == "new"


def test_the_task_admin_is_scoped_like_the_api(make_task, other_supervisor, supervisor, other_agency):
    """Behind the site's gate, the rows themselves follow the role: B's supervisor sees none of A's
    tasks (not found: 404 from a button), A's supervisor sees them."""
    from django.contrib import admin

    task = make_task()
    model_admin = TaskAdmin(Task, admin.site)
    request = RequestFactory().post("/", {"read_version": 1})
    request.user = other_supervisor
    assert not model_admin.get_queryset(request).filter(pk=task.pk).exists()
    with pytest.raises(Http404):
        task_transition_view(model_admin, request, str(task.pk), "cancelled")
    request.user = supervisor
    assert model_admin.get_queryset(request).filter(pk=task.pk).exists()
    other_task_agent = SupervisorFactory(username="sam-b", agency=other_agency)
    request.user = other_task_agent
    assert model_admin.get_object(request, str(task.pk)) is None
    assert Task.objects.get(pk=task.pk).state == "new"


def test_a_supervisors_task_page_draws_only_links_that_open_for_them(admin_client, make_task, supervisor):
    """The SLA record and the timer list are the admin role's pages: a supervisor's task page leaves out
    the links to them (an admin sees them), and every admin link it draws opens (200) for the supervisor."""
    task = make_task()  # intake: an SLA record
    event = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=1)
    TriggerTimer.objects.bulk_create(  # one timer per trigger and event: more triggers than the panel lists
        TriggerTimer(
            trigger=Trigger.objects.create(name=f"Chase {n}", event_type="TaskCreated", wait_minutes=60),
            event=event,
            aggregate_type="task",
            aggregate_id=task.pk,
            task=task,
            due_at=timezone.now() + timedelta(minutes=n),
        )
        for n in range(1, TIMERS_LIMIT + 3)
    )
    record_url = reverse("admin:sla_slarecord_change", args=[task.sla_record.pk])
    timers_url = reverse("admin:automation_triggertimer_changelist")

    admins = admin_client.get(page_url(task)).content.decode()
    assert record_url in admins
    assert timers_url in admins

    client = Client()
    client.force_login(supervisor)
    page = client.get(page_url(task))
    assert page.status_code == 200
    html = page.content.decode()
    assert "task-sla-running" in html  # the panels are there, without the closed links
    assert html.count("Chase") == TIMERS_LIMIT
    assert record_url not in html
    assert timers_url not in html
    assert_every_admin_link_opens(client, html)
    assert task.client.username in html  # named, not linked

    task_transition(task_id=task.pk, target_state="cancelled", actor=supervisor, reason="duplicate")
    page = client.get(page_url(task))  # a closed task: every field read-only
    assert page.status_code == 200
    assert_every_admin_link_opens(client, page.content.decode())
    assert task.client.username in page.content.decode()


def assert_every_admin_link_opens(client, html):
    links = {href for href in re.findall(r'href="(/admin/[^"#]*)"', html) if "logout" not in href}
    assert links
    closed = {href: client.get(href.replace("&amp;", "&")).status_code for href in links}
    assert {href: code for href, code in closed.items() if code != 200} == {}

"""A supervisor in the admin: their agency's workload page and tasks, nothing else; decided by the role at
every request (an agent is refused, a demoted supervisor closed out at once)."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from polaris.accounts.models import User
from workflow.models import Task

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Polaris-123"  # tests.factories.UserFactory
WORKLOAD = "/admin/routing/workerload/workload/"
TASKS = "/admin/workflow/task/"


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def two_agencies(make_task, make_plan, team, other_agent, other_client, other_agency):
    """A's tasks: two open for team[0] (one overdue), one unassigned, one done; B's: two open."""
    mine = [
        make_task(assignee=team[0], priority="high", due_at="2020-01-01T00:00:00Z"),
        make_task(assignee=team[0]),
        make_task(assignee=None, service_area="benefits"),
    ]
    make_plan(title="A's plan")
    make_plan(actor=other_agent, client=other_client, agency=other_agency, title="B's plan")
    theirs = [
        make_task(actor=other_agent, client=other_client, agency=other_agency, assignee=other_agent)
        for _ in range(2)
    ]
    return {"mine": mine, "theirs": theirs}


def page_links(html: str) -> list[str]:
    return [part.split('"')[0].replace("&amp;", "&") for part in html.split(f'href="{TASKS}?')[1:]]


def test_a_supervisor_signs_in_and_an_agent_does_not(supervisor, agent):
    login = Client().post(
        "/admin/login/?next=/admin/", {"username": supervisor.username, "password": PASSWORD}
    )
    assert login.status_code == 302
    assert login["Location"] == "/admin/"
    refused = Client().post("/admin/login/?next=/admin/", {"username": agent.username, "password": PASSWORD})
    assert refused.status_code == 200  # the form again, as for a wrong password
    assert refused.context["form"].errors
    assert signed_in(agent).get("/admin/").status_code == 302


def test_the_index_offers_the_workload_and_tasks_only(supervisor):
    page = signed_in(supervisor).get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="ops-dashboard"' not in html  # every agency's figures: the admins'
    assert WORKLOAD in html
    models = {model["object_name"] for app in page.context["app_list"] for model in app["models"]}
    assert models == {"Task", "WorkerLoad"}


def test_the_workload_page_is_the_supervisors_agency_only(
    supervisor, two_agencies, team, agency, other_agency
):
    browser = signed_in(supervisor)
    page = browser.get(WORKLOAD)
    assert page.status_code == 200
    assert page.context["agency"] == agency
    assert [a.pk for a in page.context["agencies"]] == [agency.pk]
    assert {w["user"] for w in page.context["data"]["workers"]} >= {w.pk for w in team}
    assert other_agency.name not in page.content.decode()
    assert browser.get(f"{WORKLOAD}?agency={agency.pk}").status_code == 200
    assert browser.get(f"{WORKLOAD}?agency={other_agency.pk}").status_code == 404
    assert browser.get(f"{WORKLOAD}?agency=nonsense").status_code == 404


def test_every_figure_links_to_its_agency_scoped_list(
    supervisor, admin_user, two_agencies, team, agency, other_agency
):
    browser = signed_in(supervisor)
    page = browser.get(WORKLOAD)
    data = page.context["data"]
    worker = next(w for w in data["workers"] if w["user"] == team[0].pk)
    expected = {
        worker["open_url"]: 2,
        worker["overdue_url"]: 1,
        worker["at_risk_url"]: 0,
        data["unassigned_url"]: 1,
    }
    for url, count in expected.items():
        listed = browser.get(url)
        assert listed.status_code == 200, url
        assert listed.context["cl"].result_count == count, url
    links = page_links(page.content.decode())
    assert len(links) >= len(expected)
    for link in links:
        listed = browser.get(f"{TASKS}?{link}")
        assert listed.status_code == 200, link
        assert {task.agency_id for task in listed.context["cl"].result_list} <= {agency.pk}
    # The whole list is A's, and its agency filter does not name B.
    everything = browser.get(TASKS)
    assert everything.context["cl"].result_count == 3
    assert other_agency.name not in everything.content.decode()
    assert other_agency.name in signed_in(admin_user).get(TASKS).content.decode()


def test_the_supervisor_works_their_tasks_and_not_another_agencys(supervisor, two_agencies):
    browser = signed_in(supervisor)
    mine, theirs = two_agencies["mine"][0], two_agencies["theirs"][0]
    page = browser.get(f"{TASKS}{mine.pk}/change/")
    assert page.status_code == 200
    assert [b.target for b in page.context["transition_buttons"]]
    assert "/admin/outbox/" not in page.content.decode()  # the outbox pages are the admins'
    plans = page.context["adminform"].form.fields["action_plan"].queryset
    assert {plan.agency_id for plan in plans} == {mine.agency_id}  # B's plan titles stay off the page
    assert browser.get(f"{TASKS}{theirs.pk}/change/").status_code == 404
    assert browser.get(f"{TASKS}{theirs.pk}/history/").status_code == 404
    moved = browser.post(f"{TASKS}{theirs.pk}/transition/cancelled/", {"read_version": theirs.version})
    assert moved.status_code == 404
    assert Task.objects.get(pk=theirs.pk).state == theirs.state
    # A lifecycle button on their own task goes through the service, as the API's transition does.
    browser.post(f"{TASKS}{mine.pk}/transition/in_progress/", {"read_version": mine.version})
    assert Task.objects.get(pk=mine.pk).state == "in_progress"


CLOSED = (
    "/admin/accounts/user/",
    "/admin/accounts/agency/",
    "/admin/automation/trigger/",
    "/admin/sla/slaconfig/",
    "/admin/sla/slarepair/preview/",
    "/admin/outbox/outboxevent/",
    "/admin/workflow/actionplan/",
    "/admin/routing/routingrule/",
    "/admin/audit/auditentry/",
)


def test_every_other_admin_page_is_closed_even_with_stale_flags_or_granted_permissions(supervisor):
    # Flags written around User.save and a permission ticked by hand: the role still decides.
    User.objects.filter(pk=supervisor.pk).update(is_staff=True, is_superuser=True)
    supervisor = User.objects.get(pk=supervisor.pk)
    supervisor.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "view_trigger"]))
    browser = signed_in(supervisor)
    for url in CLOSED:
        assert browser.get(url).status_code in (403, 404), url
    assert browser.get("/admin/accounts/user/").status_code == 403
    assert browser.get("/admin/automation/trigger/").status_code == 403


def test_a_demoted_supervisor_is_closed_out_at_the_next_request(supervisor):
    browser = signed_in(supervisor)
    assert browser.get(WORKLOAD).status_code == 200
    # Written around User.save (no session or token change): the role alone closes the site.
    User.objects.filter(pk=supervisor.pk).update(role=User.Role.AGENCY)
    for url in ("/admin/", WORKLOAD, TASKS):
        response = browser.get(url)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"], url


def _every_admin_page() -> list[str]:
    """Every URL the admin site serves without an object id: each model admin's changelist and add page,
    and the pages model admins add of their own (``get_urls``), resolved from the site itself."""
    from django.contrib import admin
    from django.urls import URLPattern, URLResolver

    pages = []
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [base, f"{base}add/"]
        for pattern in model_admin.get_urls():
            route = str(pattern.pattern) if isinstance(pattern, (URLPattern, URLResolver)) else ""
            if route and "<" not in route and route not in ("", "add/"):
                pages.append(base + route.lstrip("^").rstrip("$"))
    return sorted(set(pages))


OPEN_TO_A_SUPERVISOR = {WORKLOAD, TASKS, "/admin/routing/workerload/"}


def test_every_admin_page_but_the_supervisors_own_is_closed_to_them(supervisor):
    browser = signed_in(supervisor)
    pages = _every_admin_page()
    assert "/admin/reports/rollup/" in pages  # the enumeration sees the custom pages too
    opened = [url for url in pages if browser.get(url).status_code not in (302, 403, 404, 405)]
    assert set(opened) <= OPEN_TO_A_SUPERVISOR, opened

"""The supervisor role: agency staff who manage their own agency's configuration, and nobody else's."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from polaris import access
from polaris.accounts.models import User
from polaris.errors import PermissionDenied

pytestmark = pytest.mark.django_db


def test_create_user_makes_a_supervisor_of_an_agency():
    call_command("create_user", "sam", "--password", "pw", "--role", "supervisor", "--agency", "Harbour")
    sam = User.objects.get(username="sam")
    assert sam.role == "supervisor"
    assert sam.agency.name == "Harbour"
    assert sam.is_agency_role
    assert sam.is_supervisor_role
    assert not sam.is_staff
    assert not sam.is_superuser


def test_a_supervisor_needs_an_agency():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="nobody", role="supervisor")


def test_manager_scope(admin_user, supervisor, agent, client_user):
    assert access.manager_scope(admin_user) is None
    assert access.manager_scope(None) is None
    assert access.manager_scope(supervisor) == supervisor.agency_id
    for user in (agent, client_user):
        with pytest.raises(PermissionDenied):
            access.manager_scope(user)


def test_require_manager(admin_user, supervisor, other_agency):
    access.require_manager(admin_user, agency_id=other_agency.pk)
    access.require_manager(admin_user, agency_id=None)  # a global object: admins only
    access.require_manager(supervisor, agency_id=supervisor.agency_id)
    with pytest.raises(PermissionDenied):
        access.require_manager(supervisor, agency_id=other_agency.pk)
    with pytest.raises(PermissionDenied):
        access.require_manager(supervisor, agency_id=None)


def test_a_supervisor_is_staff_of_their_agency_only(supervisor, other_supervisor, make_task):
    task = make_task()
    assert access.is_staff_for(task, supervisor)
    assert not access.is_staff_for(task, other_supervisor)
    assert access.may_serve(supervisor, agency_id=supervisor.agency_id)
    assert not access.may_serve(other_supervisor, agency_id=supervisor.agency_id)


def test_a_supervisor_may_be_assigned_their_agencys_work(api_for, supervisor, make_task):
    task = make_task()
    response = api_for(supervisor).post(
        f"/api/workflow/tasks/{task.pk}/assign", {"assignee": supervisor.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == supervisor.pk

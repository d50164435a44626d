"""The admin site follows the role at every request, and its login locks out a guesser (django-axes),
per username and per client address, through a trusted proxy."""

import pytest
from django.test import Client

from polaris.accounts.models import User
from polaris.accounts.services import user_upsert
from tests.support.admin_forms import inline_management_data

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Polaris-123"  # tests.factories.UserFactory
PROXY = "10.0.0.2"


def test_admin_flags_follow_the_role_on_every_save(admin_user, agency):
    assert (admin_user.is_staff, admin_user.is_superuser) == (True, True)
    admin_user.role = User.Role.AGENCY
    admin_user.agency = agency
    admin_user.save()
    admin_user.refresh_from_db()
    assert (admin_user.is_staff, admin_user.is_superuser) == (False, False)
    admin_user.role = User.Role.ADMIN
    admin_user.save(update_fields=["role"])
    admin_user.refresh_from_db()
    assert (admin_user.is_staff, admin_user.is_superuser) == (True, True)


def test_a_demoted_admin_is_refused_at_the_next_request(agency):
    ada, _ = user_upsert(username="ada", password=PASSWORD, role="admin")
    browser = Client()
    browser.force_login(ada)
    assert browser.get("/admin/").status_code == 200
    # Demoted through the admin by another admin (or anywhere): the open session is closed at once.
    demoted = User.objects.get(pk=ada.pk)  # a fresh row, as another process would see it
    demoted.role = User.Role.AGENCY
    demoted.agency = agency
    demoted.save()
    response = browser.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert browser.get("/admin/accounts/user/").status_code == 302


def test_a_stale_flag_does_not_open_the_admin(agent):
    # A row written around User.save (a queryset update, a hand-edited row): the role still decides.
    User.objects.filter(pk=agent.pk).update(is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(User.objects.get(pk=agent.pk))
    assert browser.get("/admin/").status_code == 302


def test_a_demotion_in_the_admin_form_closes_the_admin(admin_client, agency):
    other, _ = user_upsert(username="other-admin", password=PASSWORD, role="admin")
    session = Client()
    session.force_login(other)
    assert session.get("/admin/").status_code == 200
    url = f"/admin/accounts/user/{other.pk}/change/"
    response = admin_client.post(
        url,
        {
            **inline_management_data(admin_client, url),
            "username": other.username,
            "role": "agency",
            "agency": agency.pk,
            "is_active": "on",
            "is_staff": "on",  # a stale tick in the form changes nothing
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    other.refresh_from_db()
    assert (other.is_staff, other.is_superuser) == (False, False)
    assert session.get("/admin/").status_code == 302


@pytest.fixture
def through_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    settings.AXES_FAILURE_LIMIT = 3


def admin_login(username: str, password: str, client_address: str):
    return Client(REMOTE_ADDR=PROXY).post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        HTTP_X_FORWARDED_FOR=f"198.51.100.{hash(username) % 200}, {client_address}",
    )


def test_admin_login_locks_out_one_address(through_proxy, admin_user):
    for n in range(2):
        assert admin_login(f"guess-{n}", "wrong", "203.0.113.7").status_code == 200  # the form again
    assert admin_login("guess-2", "wrong", "203.0.113.7").status_code == 429  # the limit-th failure locks
    locked = admin_login(admin_user.username, PASSWORD, "203.0.113.7")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert admin_login(admin_user.username, PASSWORD, "203.0.113.8").status_code == 302  # another client


def test_admin_login_locks_out_one_username_from_any_address(through_proxy, admin_user):
    for n in range(2):
        assert admin_login(admin_user.username, "wrong", f"203.0.113.{n}").status_code == 200
    assert admin_login(admin_user.username, "wrong", "203.0.113.2").status_code == 429
    locked = admin_login(admin_user.username, PASSWORD, "203.0.113.99")
    assert locked.status_code == 429
    assert locked["Retry-After"]


def test_api_logins_are_not_counted_by_the_admin_lockout(through_proxy, admin_user):
    from rest_framework.test import APIClient

    for _ in range(4):
        APIClient(REMOTE_ADDR="203.0.113.7").post(
            "/api/auth/token/", {"username": admin_user.username, "password": "wrong"}, format="json"
        )
    assert admin_login(admin_user.username, PASSWORD, "203.0.113.7").status_code == 302

"""Revocable tokens: logout revokes a refresh token; a password, role or active change revokes every token
of the user at once (access tokens included); a refresh token is good once (rotation)."""

import pytest
from rest_framework.test import APIClient

from polaris.accounts.models import User
from tests.support.admin_forms import inline_management_data
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Polaris-123"  # tests.factories.UserFactory


def obtain(user) -> dict:
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def me(access: str):
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")


def refresh(token: str):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def test_tokens_carry_the_users_version(agent):
    from rest_framework_simplejwt.tokens import AccessToken

    assert AccessToken(obtain(agent)["access"])["ver"] == agent.token_version


def test_logout_revokes_the_refresh_token(agent):
    tokens = obtain(agent)
    response = APIClient().post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 204
    assert_envelope(refresh(tokens["refresh"]), 401, "NOT_AUTHENTICATED")
    # Logging out twice, or with garbage, is a 400 naming the problem.
    again = APIClient().post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert_envelope(again, 400, "INVALID_TOKEN")
    assert_envelope(
        APIClient().post("/api/auth/logout", {"refresh": "garbage"}, format="json"), 400, "INVALID_TOKEN"
    )
    assert_envelope(APIClient().post("/api/auth/logout", {}, format="json"), 400, "VALIDATION_ERROR")


def test_a_refresh_token_is_good_once(agent):
    tokens = obtain(agent)
    first = refresh(tokens["refresh"])
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"}
    assert me(first.json()["access"]).status_code == 200
    assert_envelope(refresh(tokens["refresh"]), 401, "NOT_AUTHENTICATED")  # the used one is refused
    assert refresh(first.json()["refresh"]).status_code == 200  # the new one works, once


def change_password(user: User) -> None:
    user.set_password("a-new-Passw0rd-2026")
    user.save()


def change_role(user: User) -> None:
    user.role = User.Role.CLIENT
    user.save()


def deactivate(user: User) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize("change", [change_password, change_role, deactivate])
def test_a_change_revokes_every_token_at_once(agent, change):
    first, second = obtain(agent), obtain(agent)
    assert me(first["access"]).status_code == 200
    change(User.objects.get(pk=agent.pk))
    for tokens in (first, second):
        assert_envelope(me(tokens["access"]), 401, "NOT_AUTHENTICATED")  # not at expiry: now
        assert_envelope(refresh(tokens["refresh"]), 401, "NOT_AUTHENTICATED")


def test_a_role_change_in_the_admin_revokes_tokens(admin_client, agent):
    tokens = obtain(agent)
    url = f"/admin/accounts/user/{agent.pk}/change/"
    response = admin_client.post(
        url,
        {
            **inline_management_data(admin_client, url),
            "username": agent.username,
            "role": "client",
            "agency": agent.agency_id,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert_envelope(me(tokens["access"]), 401, "NOT_AUTHENTICATED")


def test_a_password_change_through_the_admin_form_revokes_tokens(admin_client, agent):
    tokens = obtain(agent)
    response = admin_client.post(
        f"/admin/accounts/user/{agent.pk}/password/",
        {"password1": "An0ther-Strong-pass", "password2": "An0ther-Strong-pass", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert_envelope(me(tokens["access"]), 401, "NOT_AUTHENTICATED")


def test_unrelated_saves_keep_tokens(agent):
    tokens = obtain(agent)
    user = User.objects.get(pk=agent.pk)
    user.email = "agnes@example.com"
    user.save()
    user.save(update_fields=["last_login"])
    assert me(tokens["access"]).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200


def test_the_check_can_be_switched_off_to_measure_it(agent, settings):
    tokens = obtain(agent)
    change_role(User.objects.get(pk=agent.pk))
    settings.JWT_TOKEN_VERSION_CHECK = False
    assert me(tokens["access"]).status_code == 200


def test_expired_refresh_tokens_are_purged(agent):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from polaris.accounts.tasks import expired_tokens_purge_task

    tokens = obtain(agent)
    APIClient().post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    obtain(agent)
    assert expired_tokens_purge_task() == 0
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert expired_tokens_purge_task() == 3  # two tokens and one blacklist entry
    assert not OutstandingToken.objects.exists()

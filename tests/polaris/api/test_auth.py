"""/api/auth: JWT pair and refresh, ``me``, session authentication, and what anonymous callers get."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.support.api import assert_envelope, bearer_client

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Polaris-123"  # tests.factories.UserFactory


def test_token_pair_then_me(anon_api, agent, agency):
    response = anon_api.post(
        "/api/auth/token/", {"username": agent.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.json()
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = anon_api.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": agent.pk,
        "username": agent.username,
        "role": "agency",
        "agency": str(agency.pk),
    }


def test_refresh_gives_a_new_access_token(anon_api, client_user):
    tokens = anon_api.post(
        "/api/auth/token", {"username": client_user.username, "password": PASSWORD}, format="json"
    ).json()
    response = anon_api.post("/api/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 200
    assert "access" in response.json()


def test_bad_credentials_are_401(anon_api, agent):
    response = anon_api.post(
        "/api/auth/token/", {"username": agent.username, "password": "wrong"}, format="json"
    )
    assert_envelope(response, 401, "NOT_AUTHENTICATED")


def test_bad_refresh_token_is_401(anon_api):
    assert_envelope(
        anon_api.post("/api/auth/token/refresh/", {"refresh": "garbage"}, format="json"),
        401,
        "NOT_AUTHENTICATED",
    )


def test_missing_fields_are_validation_errors(anon_api):
    body = assert_envelope(anon_api.post("/api/auth/token/", {}, format="json"), 400, "VALIDATION_ERROR")
    assert {"username", "password"} <= set(body["details"])


def test_bad_bearer_token_is_401(anon_api):
    anon_api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert_envelope(anon_api.get("/api/auth/me/"), 401, "NOT_AUTHENTICATED")


def test_token_of_an_inactive_or_deleted_user_is_401(agent, client_user):
    inactive, deleted = bearer_client(agent), bearer_client(client_user)
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    client_user.delete()
    assert_envelope(inactive.get("/api/auth/me"), 401, "NOT_AUTHENTICATED")
    assert_envelope(deleted.get("/api/auth/me"), 401, "NOT_AUTHENTICATED")


def test_token_with_a_user_id_of_the_wrong_type_is_401(anon_api, agent):
    token = AccessToken.for_user(agent)
    token["user_id"] = "not-a-number"
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_envelope(anon_api.get("/api/auth/me"), 401, "NOT_AUTHENTICATED")


def test_me_for_admin_has_no_agency(admin_api, admin_user):
    assert admin_api.get("/api/auth/me").json()["agency"] is None


def test_session_authentication_works_and_posts_need_csrf(agent, make_task):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.get("/api/auth/me").json()["id"] == agent.pk
    task = make_task()
    response = browser.post(
        f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "cancelled"}, format="json"
    )
    assert_envelope(response, 403, "PERMISSION_DENIED")  # no CSRF token


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/auth/me"),
        ("get", "/api/workflow/tasks"),
        ("post", "/api/workflow/tasks"),
        ("get", "/api/workflow/action-plans"),
        ("get", "/api/workflow/metadata"),
    ],
)
def test_anonymous_gets_401_on_everything_but_tokens_schema_and_docs(anon_api, method, path):
    assert_envelope(getattr(anon_api, method)(path), 401, "NOT_AUTHENTICATED")


def test_schema_and_docs_are_public(anon_api):
    assert anon_api.get("/api/schema/").status_code == 200
    assert anon_api.get("/api/docs/").status_code == 200

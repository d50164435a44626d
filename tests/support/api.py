"""API test helpers and fixtures: an HTTP client per persona (a real JWT); the error-envelope assertion.

The API test folders' conftest modules import the fixtures from here."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken


@pytest.fixture(autouse=True)
def _api_settings(settings):
    # Tests speak plain HTTP to the app whatever DEBUG says; throttle counters start from zero.
    settings.SECURE_SSL_REDIRECT = False
    cache.clear()


def bearer_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def api_for():
    """``api_for(user)`` → an APIClient sending that user's JWT (``None``: anonymous)."""
    return bearer_client


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def admin_api(admin_user):
    return bearer_client(admin_user)


@pytest.fixture
def agent_api(agent):
    return bearer_client(agent)


@pytest.fixture
def client_api(client_user):
    return bearer_client(client_user)


@pytest.fixture
def other_agent_api(other_agent):
    return bearer_client(other_agent)


def assert_envelope(response, status_code: int, error_code: str) -> dict:
    """The response is the error envelope with this status and code; returns its body."""
    assert response.status_code == status_code, (response.status_code, response.content[:500])
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == error_code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["details"], dict)
    return body

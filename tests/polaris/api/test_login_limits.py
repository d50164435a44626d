"""Password guessing on /api/auth/token/: limited per client address and per username, through a trusted
proxy; an unknown user and a wrong password get the same answer, and both count."""

import pytest
from rest_framework.test import APIClient

from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Polaris-123"  # tests.factories.UserFactory
PROXY = "10.0.0.2"


@pytest.fixture
def limits(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]

    def set_limits(*, address: str = "100/minute", username: str = "100/minute") -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                "anon": "1000/minute",
                "user": "1000/minute",
                "login_address": address,
                "login_username": username,
            },
        }

    return set_limits


def login(username: str, password: str, *, client: str):
    """A login through the proxy, which appends the client's address to X-Forwarded-For."""
    return APIClient(REMOTE_ADDR=PROXY).post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        HTTP_X_FORWARDED_FOR=f"198.51.100.66, {client}",  # the left hop is the client's forgery
    )


def test_brute_force_from_one_address_is_429_with_retry_after(limits, agent):
    limits(address="5/minute")
    for attempt in range(5):
        assert_envelope(login(f"guess-{attempt}", "wrong", client="203.0.113.7"), 401, "NOT_AUTHENTICATED")
    refused = login(agent.username, PASSWORD, client="203.0.113.7")  # even the right password now
    body = assert_envelope(refused, 429, "THROTTLED")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "login attempts" in body["message"]
    assert login(agent.username, PASSWORD, client="203.0.113.8").status_code == 200  # another client


def test_brute_force_on_one_username_from_many_addresses_is_429(limits, agent):
    limits(username="3/minute")
    for n in range(3):
        assert login(agent.username, "wrong", client=f"203.0.113.{n}").status_code == 401
    refused = login(agent.username, PASSWORD, client="203.0.113.50")
    assert_envelope(refused, 429, "THROTTLED")
    assert refused["Retry-After"]
    # The name is case-folded: another spelling is the same account's budget.
    assert login(agent.username.upper(), "wrong", client="203.0.113.51").status_code == 429
    assert login("someone-else", "wrong", client="203.0.113.52").status_code == 401


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(limits, agent, settings):
    limits()
    unknown = login("no-such-user", "wrong", client="203.0.113.7")
    wrong = login(agent.username, "wrong", client="203.0.113.7")
    agent.is_active = False
    agent.save()
    inactive = login(agent.username, PASSWORD, client="203.0.113.7")
    answers = [(r.status_code, r.json()) for r in (unknown, wrong, inactive)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401


def test_unknown_usernames_count_against_the_address_too(limits):
    limits(address="2/minute")
    assert login("ghost-1", "x", client="203.0.113.7").status_code == 401
    assert login("ghost-2", "x", client="203.0.113.7").status_code == 401
    assert login("ghost-3", "x", client="203.0.113.7").status_code == 429

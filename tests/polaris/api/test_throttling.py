"""Rate throttles: a fixed-window counter per caller, O(1) per request, failing open without Redis."""

import redis

from polaris.api import throttling
from tests.support.api import assert_envelope


def limit(settings, user_rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "60/minute", "user": user_rate},
    }


def test_each_caller_has_one_counter_that_expires_with_its_window(settings, agent_api, agent):
    limit(settings, "5/minute")
    for _ in range(4):
        assert agent_api.get("/api/auth/me").status_code == 200

    keys = throttling._client().keys(f"{throttling.KEY_PREFIX}:*")
    assert len(keys) == 1
    assert int(throttling._client().get(keys[0])) == 4  # a number, not a list of timestamps
    assert 0 < throttling._client().ttl(keys[0]) <= 61


def test_callers_are_counted_apart(settings, agent_api, client_api):
    limit(settings, "2/minute")
    for _ in range(2):
        assert agent_api.get("/api/auth/me").status_code == 200
    assert_envelope(agent_api.get("/api/auth/me"), 429, "THROTTLED")
    assert client_api.get("/api/auth/me").status_code == 200


def test_without_redis_requests_are_let_through(settings, agent_api, monkeypatch, caplog):
    limit(settings, "1/minute")
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(throttling, "_client", lambda: unreachable)
    for _ in range(3):
        assert agent_api.get("/api/auth/me").status_code == 200
    assert "throttle not applied" in caplog.text

"""The API fixtures (``tests.support.api``): a client per persona, throttle counters from zero, and the
throttles' clock held mid-window."""

import pytest

from polaris.api import throttling
from tests.support.api import (  # noqa: F401 (fixtures)
    _api_settings,
    admin_api,
    agent_api,
    anon_api,
    api_for,
    client_api,
    other_agent_api,
)


@pytest.fixture(autouse=True)
def one_throttle_window(monkeypatch):
    """Counting tests send a few requests and expect one window; a run straddling a minute's end would
    count them in two (CI saw it). The throttles read this clock, held at 30 s into a minute."""
    held = staticmethod(lambda: 1_800_000_030.0)
    for throttle in (
        throttling.AnonRateThrottle,
        throttling.UserRateThrottle,
        throttling.LoginAddressThrottle,
        throttling.LoginUsernameThrottle,
    ):
        monkeypatch.setattr(throttle, "timer", held)

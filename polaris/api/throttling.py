"""DRF's rate throttles, reading their rates at request time.

DRF's throttle classes copy ``DEFAULT_THROTTLE_RATES`` when the class is defined, so a changed setting
(``override_settings`` in tests, a reloaded configuration) would be ignored; these read it per request.
"""

from typing import Any

from rest_framework import throttling
from rest_framework.settings import api_settings


def _current_rate(scope: str | None) -> str | None:
    rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
    return rates.get(scope or "")


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_rate(self) -> str | None:
        return _current_rate(self.scope)


class UserRateThrottle(throttling.UserRateThrottle):
    def get_rate(self) -> str | None:
        return _current_rate(self.scope)

"""The API fixtures (``tests.support.api``)."""

from tests.support.api import _api_settings, api_for  # noqa: F401 (fixtures)

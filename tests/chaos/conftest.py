"""Chaos test fixtures: the API clients per persona (tests/api's) and the effect table (tests/dispatch's)."""

from tests.api.conftest import _api_settings, agent_api, bearer_client
from tests.dispatch.conftest import effect_table

__all__ = ["_api_settings", "agent_api", "bearer_client", "effect_table"]

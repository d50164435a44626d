"""Chaos test fixtures: the API clients per persona (tests.support.api) and the effect table (tests/outbox's)."""

from tests.support.api import _api_settings, agent_api, bearer_client
from tests.outbox.conftest import effect_table

__all__ = ["_api_settings", "agent_api", "bearer_client", "effect_table"]

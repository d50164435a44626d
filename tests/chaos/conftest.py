"""Chaos test fixtures: the API clients per persona (tests.support.api), the effect table (tests/outbox's)."""

from tests.outbox.conftest import effect_table
from tests.support.api import _api_settings, agent_api, bearer_client

__all__ = ["_api_settings", "agent_api", "bearer_client", "effect_table"]

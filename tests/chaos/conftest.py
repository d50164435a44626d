"""Chaos test fixtures: the API clients per persona (the same as tests/api's)."""

from tests.api.conftest import _api_settings, agent_api, bearer_client

__all__ = ["_api_settings", "agent_api", "bearer_client"]

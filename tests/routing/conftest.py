"""Fixtures for routing tests: a team of agents in the personas' agency and a rule factory."""

import pytest

from routing.models import RoutingRule, WorkerProfile
from tests.factories import AgentFactory
from tests.support.api import (  # noqa: F401 (fixtures)
    _api_settings,
    admin_api,
    agent_api,
    api_for,
    client_api,
    other_agent_api,
)
from workflow.services.tasks import task_create


@pytest.fixture
def team(agency):
    """Four agents of the personas' agency, in id order."""
    return [AgentFactory(username=f"worker-{n}", agency=agency) for n in range(4)]


@pytest.fixture
def make_rule(agency):
    def make(**values):
        candidates = values.pop("candidates", None)
        rule = RoutingRule.objects.create(agency=agency, name=values.pop("name", "intake"), **values)
        if candidates:
            rule.candidates.set(candidates)
        return rule

    return make


@pytest.fixture
def new_task(agent, client_user, agency):
    """An unassigned task created through the service (routing applies in its transaction)."""

    def make(**overrides):
        fields = {
            "actor": agent,
            "title": "Intake",
            "task_type": "intake",
            "service_area": "housing",
            "client": client_user,
            "agency": agency,
        }
        fields.update(overrides)
        return task_create(**fields)

    return make


def profile(user, **values):
    WorkerProfile.objects.update_or_create(user=user, defaults=values)

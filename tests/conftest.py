"""Named personas shared by every test module: an admin, an agency supervisor, an agency agent and a client
of one agency, and a supervisor, an agent and a client of another agency (the other tenant)."""

import pytest

from tests.factories import AdminFactory, AgencyFactory, AgentFactory, ClientFactory, SupervisorFactory
from workflow.services.action_plans import action_plan_create
from workflow.services.tasks import task_create


@pytest.fixture
def agency(db):
    return AgencyFactory(name="North Star Services", slug="north-star")


@pytest.fixture
def other_agency(db):
    return AgencyFactory(name="Southern Cross Care", slug="southern-cross")


@pytest.fixture
def admin_user(db):
    return AdminFactory(username="ada-admin")


@pytest.fixture
def agent(agency):
    return AgentFactory(username="agnes-agent", agency=agency)


@pytest.fixture
def supervisor(agency):
    return SupervisorFactory(username="suki-supervisor", agency=agency)


@pytest.fixture
def other_supervisor(other_agency):
    return SupervisorFactory(username="sven-other-supervisor", agency=other_agency)


@pytest.fixture
def client_user(agency):
    return ClientFactory(username="cleo-client", agency=agency)


@pytest.fixture
def other_agent(other_agency):
    return AgentFactory(username="otto-other-agent", agency=other_agency)


@pytest.fixture
def other_client(other_agency):
    return ClientFactory(username="olga-other-client", agency=other_agency)


@pytest.fixture
def make_task(agent, client_user, agency):
    """Create a task through the service (so it has its TaskCreated event)."""

    def make(**overrides):
        fields = {
            "actor": agent,
            "title": "Initial intake",
            "task_type": "intake",
            "service_area": "housing",
            "client": client_user,
            "agency": agency,
            "assignee": agent,
        }
        fields.update(overrides)
        return task_create(**fields)

    return make


@pytest.fixture
def make_plan(agent, client_user, agency):
    def make(**overrides):
        fields = {"actor": agent, "title": "Stable housing", "client": client_user, "agency": agency}
        fields.update(overrides)
        return action_plan_create(**fields)

    return make

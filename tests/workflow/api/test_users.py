"""GET /api/workflow/users: people scoped to the caller, filtered by role and search."""

import pytest

from tests.factories import AgentFactory, ClientFactory
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

USERS = "/api/workflow/users"


def names(response) -> set[str]:
    assert response.status_code == 200, response.content[:300]
    return {user["username"] for user in response.json()["results"]}


@pytest.fixture
def people(admin_user, agent, client_user, other_agent, other_client, agency, make_task):
    second = AgentFactory(username="bea-agent", agency=agency)
    lone = ClientFactory(username="lou-lone-client", agency=None)
    make_task(assignee=second)
    return {"second": second, "lone": lone}


def test_admin_sees_everyone(admin_api, people):
    assert names(admin_api.get(USERS)) >= {
        "ada-admin",
        "agnes-agent",
        "bea-agent",
        "cleo-client",
        "otto-other-agent",
        "olga-other-client",
        "lou-lone-client",
    }


def test_agent_sees_its_agency_and_the_clients_it_may_serve(agent_api, people):
    # Clients linked to the agency only: an unserved client is no longer a pool every agency can list.
    assert names(agent_api.get(USERS)) == {"agnes-agent", "bea-agent", "cleo-client"}
    assert names(agent_api.get(USERS, {"role": "agency"})) == {"agnes-agent", "bea-agent"}
    assert names(agent_api.get(USERS, {"role": "client", "search": "CLEO"})) == {"cleo-client"}


def test_client_sees_itself_and_the_agents_on_its_tasks(client_api, people):
    assert names(client_api.get(USERS)) == {"cleo-client", "bea-agent"}


def test_other_tenant_sees_none_of_them(other_agent_api, people):
    assert names(other_agent_api.get(USERS)) == {"otto-other-agent", "olga-other-client"}


def test_bad_query_and_anonymous(agent_api, anon_api):
    assert_envelope(agent_api.get(USERS, {"role": "boss"}), 400, "VALIDATION_ERROR")
    assert_envelope(agent_api.get(USERS, {"team": "x"}), 400, "VALIDATION_ERROR")
    assert_envelope(anon_api.get(USERS), 401, "NOT_AUTHENTICATED")

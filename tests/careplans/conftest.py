"""Care-plan fixtures: templates made through the service, API clients per persona, dispatch on demand."""

import pytest

from careplans.services.templates import plan_template_create
from outbox.dispatcher import outbox_dispatch
from tests.support.api import (  # noqa: F401 (fixtures)
    _api_settings,
    admin_api,
    agent_api,
    anon_api,
    api_for,
    bearer_client,
    client_api,
    other_agent_api,
)

# intake → assessment → {housing, benefits} → review: a diamond, so review waits for two tasks.
DIAMOND = [
    {"key": "intake", "title": "Intake", "task_type": "intake", "due_in_business_hours": 4},
    {
        "key": "assessment",
        "title": "Assessment",
        "task_type": "assessment",
        "due_in_business_hours": 8,
        "depends_on": ["intake"],
    },
    {
        "key": "housing",
        "title": "Housing application",
        "task_type": "housing-application",
        "service_area": "housing",
        "depends_on": ["assessment"],
        "checklist": [{"text": "Proof of address", "required": True}],
    },
    {
        "key": "benefits",
        "title": "Benefits check",
        "task_type": "benefits",
        "depends_on": ["assessment"],
        "on_predecessor_cancelled": "cancel",
    },
    {
        "key": "review",
        "title": "Review",
        "task_type": "review",
        "due_in_business_hours": 2,
        "depends_on": ["housing", "benefits"],
    },
]


@pytest.fixture
def supervisor_api(supervisor):
    return bearer_client(supervisor)


@pytest.fixture
def other_supervisor_api(other_supervisor):
    return bearer_client(other_supervisor)


@pytest.fixture
def make_template(supervisor, agency):
    def make(blueprints=None, **fields):
        fields.setdefault("name", "Housing pathway")
        fields.setdefault("actor", supervisor)
        fields.setdefault("agency", agency)
        return plan_template_create(blueprints=blueprints or DIAMOND, **fields)

    return make


def dispatch() -> None:
    """Run the real dispatcher until nothing is due (every registered handler, the ledger, leases)."""
    outbox_dispatch(budget_seconds=20, max_batches=50)

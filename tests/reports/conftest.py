from tests.sla.conftest import intake_config, move  # noqa: F401 (fixtures)
from tests.support.api import (  # noqa: F401 (fixtures)
    _api_settings,
    admin_api,
    agent_api,
    anon_api,
    api_for,
    client_api,
    other_agent_api,
)

"""One client journey over real HTTP (a live server on a socket), as a browser or script would make it."""

import httpx
import pytest

from tests.factories import AgencyFactory, AgentFactory, ClientFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-Polaris-123"


def test_token_create_transition_history_over_http(live_server, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]  # whatever DEBUG says
    agency = AgencyFactory(slug="live-agency")
    agent = AgentFactory(agency=agency)
    client_user = ClientFactory(agency=agency)
    # The live server's middleware was set up with the session's settings: with DEBUG off that includes
    # SECURE_SSL_REDIRECT, so speak as a TLS-terminating proxy would.
    with httpx.Client(base_url=live_server.url, timeout=10, headers={"X-Forwarded-Proto": "https"}) as http:
        tokens = http.post("/api/auth/token/", json={"username": agent.username, "password": PASSWORD})
        assert tokens.status_code == 200
        http.headers["Authorization"] = f"Bearer {tokens.json()['access']}"

        created = http.post(
            "/api/workflow/tasks",
            json={"title": "Intake", "task_type": "intake", "client": client_user.pk, "assignee": agent.pk},
            headers={"Idempotency-Key": "live-1", "X-Correlation-ID": "live-journey"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Correlation-ID"] == "live-journey"
        task_id = created.json()["id"]
        replayed = http.post(
            "/api/workflow/tasks",
            json={"title": "Intake", "task_type": "intake", "client": client_user.pk, "assignee": agent.pk},
            headers={"Idempotency-Key": "live-1"},
        )
        assert replayed.json()["id"] == task_id

        moved = http.post(f"/api/workflow/tasks/{task_id}/transition/", json={"target_state": "in_progress"})
        assert moved.status_code == 200
        assert moved.json()["success"] is True

        refused = http.post(f"/api/workflow/tasks/{task_id}/transition", json={"target_state": "new"})
        assert refused.status_code == 400
        assert refused.json()["error_code"] == "INVALID_TRANSITION"

        history = http.get(f"/api/workflow/tasks/{task_id}/events").json()["results"]
        assert [event["event_type"] for event in history] == ["TaskCreated", "TaskStateChanged"]
        assert history[0]["correlation_id"] == "live-journey"

        http.headers.pop("Authorization")
        anonymous = http.get("/api/workflow/tasks")
        assert anonymous.status_code == 401
        assert anonymous.json()["error_code"] == "NOT_AUTHENTICATED"

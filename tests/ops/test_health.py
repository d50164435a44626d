"""/healthz answers without touching anything; /readyz names each dependency and fails closed (503)."""

import pytest
from django.db.migrations.executor import MigrationExecutor

from ops import health


def test_healthz_is_ok_without_touching_the_database(client):
    # No django_db mark: any query would raise here.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_redis_and_migrations_are(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "migrations"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"] == "unavailable"  # the exception text stays in the log
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_while_migrations_are_pending(client, monkeypatch):
    monkeypatch.setattr(health, "_migrations_ok", False)
    pending = [(type("Migration", (), {"app_label": "workflow", "name": "0099_future"})(), False)]
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: pending)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["migrations"] == {
        "ok": False,
        "duration_ms": body["checks"]["migrations"]["duration_ms"],
        "error": "1 migration(s) not applied, e.g. workflow.0099_future",
    }


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_check_fails(client, monkeypatch):
    def broken():
        raise OSError("could not connect to server")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "duration_ms": response.json()["checks"]["database"]["duration_ms"],
        "error": "unavailable",
    }
    assert "could not connect" not in response.content.decode()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
@pytest.mark.django_db
def test_probes_are_exempt_from_the_https_redirect(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path).status_code in (200, 503)
    assert client.get("/admin/login/").status_code == 301


def test_probes_answer_head_requests_too(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405

"""Regressions for the deployment findings: every setting reaches web, worker and beat; secrets from
``*_FILE``; a placeholder SECRET_KEY stops production; /metrics behind a bearer token; proxy headers
believed only from trusted proxies; a second beat refuses to start."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.processes import CeleryProcess, celery_process, process_env

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat", "migrate")


def _settings_process(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` after ``django.setup()`` in a fresh interpreter with exactly this environment."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; {code}",
            *args,
        ],
        cwd=ROOT,
        env={
            "DJANGO_SETTINGS_MODULE": "polaris.settings",
            "DATABASE_URL": "postgresql://x@localhost/x",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def django_check(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh process with exactly this environment (a JWT key of its own unless
    given); print the SECRET_KEY."""
    return _settings_process(
        "print(repr(settings.SECRET_KEY))", {"JWT_SIGNING_KEY": "a-jwt-key-" + "j" * 40, **env}
    )


# A setting's value read by path: its name, then keys into it.
_READ = (
    "import json, sys, functools; "
    "key = lambda value, name: value[name]; "
    "read = lambda path: functools.reduce(key, path[1:], getattr(settings, path[0])); "
    "print(json.dumps({name: read(path) for name, path in json.loads(sys.argv[1]).items()}))"
)


def settings_read(paths: dict[str, tuple[str, ...]], **env: str) -> dict:
    """The settings at ``paths`` (e.g. ``("DATABASES", "default", "PASSWORD")``) in a fresh process whose
    settings were read from exactly this environment; fails the test if the settings refuse it."""
    base = {
        "DEBUG": "false",
        "ALLOWED_HOSTS": "x",
        "SECRET_KEY": "a-real-secret-" + "k" * 40,
        "JWT_SIGNING_KEY": "a-jwt-key-" + "j" * 40,
    }
    result = _settings_process(_READ, {**base, **env}, json.dumps(paths))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


DB = ("DATABASES", "default")


def documented_settings() -> set[str]:
    """The variables of the configuration table, docs/configuration.md."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", doc, flags=re.MULTILINE))


def test_every_app_service_reads_the_env_file():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for service in APP_SERVICES:
        env_files = compose["services"][service]["env_file"]
        paths = [entry["path"] if isinstance(entry, dict) else entry for entry in env_files]
        assert ".env" in paths, service


def test_compose_does_not_override_documented_settings_with_its_own_defaults():
    # A variable compose sets itself would win over the env file: only connection wiring may be set there.
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    wiring = {"DATABASE_URL", "REDIS_URL", "DEBUG", "POLARIS_SERVICE", "PROMETHEUS_MULTIPROC_DIR"}
    wiring |= {"CELERY_METRICS_PORT", "SECRET_KEY_FILE"}
    assert documented_settings(), "configuration table not found"
    for service in APP_SERVICES:
        overridden = set(compose["services"][service].get("environment", {})) - wiring
        plain = {name for name in overridden if name in documented_settings()}
        for name in plain:
            value = str(compose["services"][service]["environment"][name])
            assert value.startswith("${" + name), (service, name, value)


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("a-real-secret-from-a-file-" + "x" * 40 + "\n")
    result = django_check(DEBUG="false", SECRET_KEY_FILE=str(secret), ALLOWED_HOSTS="x")
    assert result.returncode == 0, result.stderr
    assert "a-real-secret-from-a-file-" in result.stdout


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path):
    result = django_check(DEBUG="false", SECRET_KEY_FILE=str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr


def test_an_empty_secret_file_is_a_clear_error(tmp_path):
    (tmp_path / "token").write_text("\n")
    result = django_check(
        DEBUG="false", SECRET_KEY="k" * 50, METRICS_BEARER_TOKEN_FILE=str(tmp_path / "token")
    )
    assert result.returncode != 0
    assert "METRICS_BEARER_TOKEN_FILE" in result.stderr
    assert "empty" in result.stderr


def test_every_secret_can_come_from_a_file(tmp_path):
    secrets = {
        "DATABASE_PASSWORD": "pg-pass-from-file",
        "METRICS_BEARER_TOKEN": "scrape-token-from-file",
        "JWT_SIGNING_KEY": "jwt-key-from-file-" + "j" * 40,
        "REDIS_URL": "redis://:redis-pass-from-file@redis:6379/0",
    }
    env = {}
    for name, value in secrets.items():
        (tmp_path / name.lower()).write_text(value + "\n")  # as `echo … > file` leaves it
        env[f"{name}_FILE"] = str(tmp_path / name.lower())
    read = settings_read(
        {
            "DATABASE_PASSWORD": (*DB, "PASSWORD"),
            "METRICS_BEARER_TOKEN": ("METRICS_BEARER_TOKEN",),
            "JWT_SIGNING_KEY": ("SIMPLE_JWT", "SIGNING_KEY"),
            "REDIS_URL": ("CACHES", "default", "LOCATION"),
            "BROKER": ("CELERY_BROKER_URL",),
        },
        DATABASE_URL="postgresql://polaris:in-the-url@postgres:5432/polaris",
        **env,
    )
    assert read == {**secrets, "BROKER": secrets["REDIS_URL"]}


@pytest.mark.parametrize("name", ["DATABASE_URL", "METRICS_BEARER_TOKEN"])
def test_the_file_wins_over_the_variable_when_both_are_set(tmp_path, name):
    # compose sets DATABASE_URL in `environment:`, which .env cannot unset: a NAME_FILE must still apply.
    value = {"DATABASE_URL": "postgresql://u:from-file@db.internal:6543/prod"}.get(name, "from-file")
    (tmp_path / "secret").write_text(value)
    paths = (
        {"host": (*DB, "HOST"), "value": (*DB, "PASSWORD")} if name == "DATABASE_URL" else {"value": (name,)}
    )
    read = settings_read(paths, **{name: "from-the-variable", f"{name}_FILE": str(tmp_path / "secret")})
    assert read["value"] == "from-file"
    if name == "DATABASE_URL":
        assert read["host"] == "db.internal"


def test_database_password_replaces_the_one_in_the_url():
    url = "postgresql://polaris:@postgres:5432/polaris"  # compose's URL when the password is in a file
    assert settings_read({"p": (*DB, "PASSWORD")}, DATABASE_URL=url)["p"] == ""
    read = settings_read(
        {"p": (*DB, "PASSWORD"), "u": (*DB, "USER")}, DATABASE_URL=url, DATABASE_PASSWORD="pw"
    )
    assert read == {"p": "pw", "u": "polaris"}


@pytest.mark.parametrize("placeholder", ["change-me-to-a-long-random-string", "django-insecure-abc"])
def test_production_refuses_a_placeholder_secret_key(placeholder):
    result = django_check(DEBUG="false", SECRET_KEY=placeholder)
    assert result.returncode != 0
    assert "placeholder" in result.stderr
    assert django_check(DEBUG="true", SECRET_KEY=placeholder).returncode == 0


def test_env_example_placeholder_is_one_production_refuses():
    example = (ROOT / ".env.example").read_text()
    key = re.search(r"^SECRET_KEY=(.*)$", example, flags=re.MULTILINE)
    assert key
    result = django_check(DEBUG="false", SECRET_KEY=key.group(1).strip())
    assert result.returncode != 0


@pytest.mark.django_db
def test_metrics_bearer_token(client, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-token-123"
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123")
    assert allowed.status_code == 200
    assert b"polaris_state_collector_up" in allowed.content
    settings.METRICS_BEARER_TOKEN = None
    assert client.get("/metrics").status_code == 200


def test_operations_doc_shows_the_scrape_config_with_the_token():
    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert "METRICS_BEARER_TOKEN" in runbook
    assert "credentials_file" in runbook


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("remote_addr", "trusted", "secure"),
    [("203.0.113.9", ["10.0.0.0/8"], False), ("10.1.2.3", ["10.0.0.0/8"], True), ("127.0.0.1", [], False)],
)
def test_forwarded_proto_is_believed_only_from_trusted_proxies(settings, remote_addr, trusted, secure):
    from django.test import Client

    settings.TRUSTED_PROXIES = trusted
    settings.SECURE_SSL_REDIRECT = True
    response = Client(REMOTE_ADDR=remote_addr).get("/api/auth/me", HTTP_X_FORWARDED_PROTO="https")
    # Believed: the request counts as https (no redirect; 401 for the missing token). Not: redirected.
    assert (response.status_code == 401) is secure, response.status_code
    if not secure:
        assert response.status_code == 301
        assert response["Location"].startswith("https://")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_second_beat_refuses_to_start(tmp_path):
    env = process_env()
    with celery_process("beat", "-s", str(tmp_path / "first-schedule"), env=env):
        second = CeleryProcess("beat", ["-s", str(tmp_path / "second-schedule")], env)
        try:
            assert second.wait(timeout=60) != 0
        finally:
            second.stop()
        assert "already runs beat" in second.output
    # Released on a clean stop: the next beat starts.
    with celery_process("beat", "-s", str(tmp_path / "third-schedule"), env=env):
        pass


@pytest.mark.django_db
def test_metrics_are_closed_without_a_token_unless_opened_on_purpose(client, settings):
    settings.DEBUG = False
    settings.METRICS_BEARER_TOKEN = None
    settings.METRICS_PUBLIC = False
    closed = client.get("/metrics")
    assert closed.status_code == 403
    assert b"polaris_" not in closed.content
    settings.METRICS_BEARER_TOKEN = "scrape-token-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200
    settings.METRICS_BEARER_TOKEN = None
    settings.METRICS_PUBLIC = True
    assert client.get("/metrics").status_code == 200


def test_production_metrics_are_not_public_by_default():
    read = settings_read({"public": ("METRICS_PUBLIC",)})
    assert read == {"public": False}
    assert settings_read({"public": ("METRICS_PUBLIC",)}, METRICS_PUBLIC="true") == {"public": True}


@pytest.mark.parametrize(
    ("jwt_key", "problem"),
    [(None, "JWT_SIGNING_KEY must be set"), ("same", "JWT_SIGNING_KEY"), ("change-me", "JWT_SIGNING_KEY")],
)
def test_production_refuses_to_start_without_a_jwt_key_of_its_own(jwt_key, problem):
    secret = "a-real-secret-" + "k" * 40
    env = {"DEBUG": "false", "ALLOWED_HOSTS": "x", "SECRET_KEY": secret}
    if jwt_key is not None:
        env["JWT_SIGNING_KEY"] = secret if jwt_key == "same" else jwt_key
    result = _settings_process("print(settings.SIMPLE_JWT['SIGNING_KEY'])", env)
    assert result.returncode != 0
    assert problem in result.stderr


def test_production_signs_tokens_with_the_jwt_key():
    read = settings_read({"key": ("SIMPLE_JWT", "SIGNING_KEY")}, JWT_SIGNING_KEY="its-own-key-" + "z" * 40)
    assert read == {"key": "its-own-key-" + "z" * 40}

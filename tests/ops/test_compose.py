"""compose.yaml, Dockerfile and .env.example: `docker compose up` is the production-like path.

``docker-compose config`` validates the file when that tool exists (Debian package ``docker-compose``);
the structural checks with PyYAML always run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "feed", "worker", "beat")
LONG_RUNNING = ("postgres", "redis", *APP_SERVICES)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # resolves the x-app anchors and merges


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (apt-get install docker-compose, or scripts/ci_system_packages.sh)",
)
def test_docker_compose_accepts_the_file_with_the_example_env(tmp_path):
    # As an operator would: .env made from .env.example beside compose.yaml (services read it via env_file).
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "--env-file", ".env", "-f", "compose.yaml", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) >= {"postgres", "redis", "migrate", *APP_SERVICES}
    web_env = resolved["services"]["web"]["environment"]
    assert web_env["DATABASE_URL"] == "postgresql://polaris:change-me-too@postgres:5432/polaris"
    assert resolved["services"]["worker"]["command"][-1] == "2"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_with_file_based_secrets_reaches_the_settings(tmp_path):
    # As an operator would: secrets in ./secrets/, the leftover .env placeholders beside them, the overlay.
    for name in ("compose.yaml", "compose.secrets.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    (tmp_path / "secrets").mkdir()
    values = {
        "secret_key": "file-secret-key-" + "s" * 50,
        "jwt_signing_key": "file-jwt-key-" + "j" * 50,
        "postgres_password": "file-pg-password",
        "metrics_bearer_token": "file-metrics-token",
    }
    for name, value in values.items():
        (tmp_path / "secrets" / name).write_text(value + "\n")
    result = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "-f", "compose.secrets.yaml", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert {name: spec["file"] for name, spec in resolved["secrets"].items()} == {
        name: str(tmp_path / "secrets" / name) for name in values
    }
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == ""
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    for service in ("migrate", *APP_SERVICES):
        mounted = {
            entry["source"] if isinstance(entry, dict) else entry
            for entry in resolved["services"][service]["secrets"]
        }
        assert mounted == set(values), service
    # The web's resolved environment, with /run/secrets/<name> where compose mounts the files, gives the
    # settings the files' values, not the .env placeholders beside them.
    env = {
        name: str(value).replace("/run/secrets/", f"{tmp_path}/secrets/")
        for name, value in resolved["services"]["web"]["environment"].items()
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps(["
        "s.SECRET_KEY, s.DATABASES['default']['PASSWORD'], s.DATABASES['default']['HOST'], "
        "s.METRICS_BEARER_TOKEN, s.SIMPLE_JWT['SIGNING_KEY']]))"
    )
    env |= {"DJANGO_SETTINGS_MODULE": "polaris.settings", "PATH": os.environ.get("PATH", "")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    read = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout.strip().splitlines()[-1]) == [
        values["secret_key"],
        values["postgres_password"],
        "postgres",
        values["metrics_bearer_token"],
        values["jwt_signing_key"],
    ]


def test_the_services_are_all_there(compose):
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "web", "feed", "worker", "beat"}


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_every_long_running_service_has_a_health_check(compose, service):
    check = compose["services"][service]["healthcheck"]
    assert check["test"]
    assert check["interval"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_healthy_stores_and_the_finished_migration(compose, service):
    depends = compose["services"][service]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_migrate_is_one_shot_and_runs_migrate(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert set(migrate["depends_on"]) == {"postgres", "redis"}


def test_state_lives_in_named_volumes(compose):
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "beat-data"}
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]
    assert any(v.startswith("beat-data:") for v in compose["services"]["beat"]["volumes"])


def test_processes_and_metrics_wiring(compose):
    services = compose["services"]
    assert services["web"]["command"][:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    # The async tier: long-polls on uvicorn workers, its own port.
    assert services["feed"]["command"] == [
        "gunicorn",
        "--config",
        "gunicorn.async.conf.py",
        "polaris.asgi:application",
    ]
    assert services["worker"]["command"][:4] == ["celery", "-A", "polaris", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "polaris", "beat"]
    assert "deploy" not in services["beat"]  # never replicated: exactly one beat
    assert services["worker"]["environment"]["CELERY_METRICS_PORT"] == "9808"
    for name in ("web", "feed", "worker"):
        # Each container's multiprocess directory is its own tmpfs: empty at start, never shared.
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/metrics"
        assert services[name]["tmpfs"][0].startswith("/run/metrics")


def test_secrets_come_from_the_env_file_or_from_files(compose):
    env = compose["services"]["web"]["environment"]
    # SECRET_KEY or SECRET_KEY_FILE: the settings refuse to start without one (and refuse placeholders).
    assert env["SECRET_KEY"] == "${SECRET_KEY:-}"
    # POSTGRES_PASSWORD in .env, or the password from a file (compose.secrets.yaml): neither is required
    # by interpolation, so the file-based setup needs no dummy value (the postgres image refuses neither).
    assert "${POSTGRES_PASSWORD:-}" in env["DATABASE_URL"]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-}"
    assert env["DEBUG"] == "false"


@pytest.fixture(scope="module")
def secrets_overlay() -> dict:
    return yaml.safe_load((ROOT / "compose.secrets.yaml").read_text())


def test_the_secrets_overlay_feeds_every_secret_from_a_file(secrets_overlay):
    services = secrets_overlay["services"]
    declared = secrets_overlay["secrets"]
    assert {name: spec["file"] for name, spec in declared.items()} == {
        "secret_key": "./secrets/secret_key",
        "jwt_signing_key": "./secrets/jwt_signing_key",
        "postgres_password": "./secrets/postgres_password",
        "metrics_bearer_token": "./secrets/metrics_bearer_token",
    }
    for service in ("migrate", *APP_SERVICES):
        assert set(services[service]["secrets"]) == set(declared), service
        assert services[service]["environment"] == {
            "SECRET_KEY_FILE": "/run/secrets/secret_key",
            "JWT_SIGNING_KEY_FILE": "/run/secrets/jwt_signing_key",
            "DATABASE_PASSWORD_FILE": "/run/secrets/postgres_password",
            "METRICS_BEARER_TOKEN_FILE": "/run/secrets/metrics_bearer_token",
        }
    # One password file for the database and the apps; POSTGRES_PASSWORD blanked (the image refuses both).
    assert services["postgres"]["secrets"] == ["postgres_password"]
    assert services["postgres"]["environment"] == {
        "POSTGRES_PASSWORD": "",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
    }


def test_secret_files_never_reach_git_or_the_image():
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


def test_env_example_documents_every_variable_compose_reads():
    text = (ROOT / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    mentioned = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = env_example()
    assert required <= set(example)
    assert mentioned <= set(example), mentioned - set(example)
    # Placeholders only: nothing that looks like a real secret.
    assert example["SECRET_KEY"].startswith("change-me")
    assert example["JWT_SIGNING_KEY"].startswith("change-me")
    assert example["POSTGRES_PASSWORD"].startswith("change-me")


def test_dockerfile_is_slim_non_root_gunicorn_with_static_files():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users
    assert users[-1] not in ("root", "0")
    assert "collectstatic" in dockerfile
    assert '"gunicorn", "--config", "gunicorn.conf.py"' in dockerfile
    assert "-c requirements.lock" in dockerfile


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".data", ".git", ".env"} <= ignored

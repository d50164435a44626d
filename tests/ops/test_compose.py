"""compose.yaml, Dockerfile and .env.example: `docker compose up` is the production-like path.

``docker-compose config`` validates the file when that tool exists (Debian package ``docker-compose``);
the structural checks with PyYAML always run.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat")
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


def test_the_services_are_all_there(compose):
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "web", "worker", "beat"}


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
    assert services["worker"]["command"][:4] == ["celery", "-A", "polaris", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "polaris", "beat"]
    assert "deploy" not in services["beat"]  # never replicated: exactly one beat
    assert services["worker"]["environment"]["CELERY_METRICS_PORT"] == "9808"
    for name in ("web", "worker"):
        # Each container's multiprocess directory is its own tmpfs: empty at start, never shared.
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/metrics"
        assert services[name]["tmpfs"][0].startswith("/run/metrics")


def test_secrets_come_from_the_env_file_and_are_required(compose):
    env = compose["services"]["web"]["environment"]
    # SECRET_KEY or SECRET_KEY_FILE: the settings refuse to start without one (and refuse placeholders).
    assert env["SECRET_KEY"] == "${SECRET_KEY:-}"
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert env["DEBUG"] == "false"


def test_env_example_documents_every_variable_compose_reads():
    text = (ROOT / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    mentioned = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = env_example()
    assert required <= set(example)
    assert mentioned <= set(example), mentioned - set(example)
    # Placeholders only: nothing that looks like a real secret.
    assert example["SECRET_KEY"].startswith("change-me")
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

"""Checks on the code itself: migrations match the models, and ruff is clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.django_db
def test_migrations_match_models():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_ruff_lint_is_clean():
    result = subprocess.run([BIN / "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = subprocess.run(
        [BIN / "ruff", "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    # The django-stubs plugin loads settings; any syntactically valid URL will do, nothing connects.
    env = {**os.environ, "DATABASE_URL": "postgresql://mypy@localhost/mypy", "DEBUG": "true"}
    result = subprocess.run(
        [BIN / "mypy", "."], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_application_code_imports_only_runtime_dependencies():
    # The Docker image installs [project].dependencies only: an app module importing a dev-only package
    # (httpx once was) would pass every test here and fail in production.
    import ast
    import importlib.metadata
    import re
    import tomllib

    def normalise(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}
    # Packages that arrive with a declared one (Django brings asgiref; Celery brings kombu; …).
    provided = {
        normalise(req.split()[0]) for dist in declared for req in (importlib.metadata.requires(dist) or [])
    }
    distributions = importlib.metadata.packages_distributions()
    local = {"polaris", "outbox", "workflow", "sla", "routing", "automation", "careplans", "reports", "ops"}
    missing: dict[str, str] = {}
    for package in local:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in local or top in sys.stdlib_module_names:
                        continue
                    owners = {normalise(d) for d in distributions.get(top, [top])}
                    if not owners & (declared | provided):
                        missing[top] = str(path.relative_to(ROOT))
    assert not missing, f"imported by application code but not a runtime dependency: {missing}"

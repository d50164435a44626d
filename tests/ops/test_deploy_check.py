"""Production settings pass ``manage.py check --deploy`` with no warning at all."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def production_env() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "polaris.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://polaris.example.com",
        }
    )
    return env


def test_check_deploy_passes_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "-c", "import polaris.settings"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_whitenoise_serves_compressed_manifest_static_files_in_production():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import polaris.settings as s; print(s.STORAGES['staticfiles']['BACKEND']); "
            "print('whitenoise.middleware.WhiteNoiseMiddleware' in s.MIDDLEWARE)",
        ],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["whitenoise.storage.CompressedManifestStaticFilesStorage", "True"]

"""``promtool`` (Debian package ``prometheus``) checks what we export; without it, tests skip saying why."""

import shutil
import subprocess

import pytest

PROMTOOL = shutil.which("promtool")
requires_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (apt-get install prometheus, or run scripts/ci_system_packages.sh)",
)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, timeout=60)

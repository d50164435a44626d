"""The README's API quick tour, as a newcomer pastes it into bash: against a live server with the demo data,
it runs twice in a row and no command gets an error answer (the second run makes a task of its own instead
of replaying the first run's key, and its If-Match names the version the assignment returned)."""

import shutil
import subprocess

import pytest
from django.core.management import call_command

from tests.support.processes import ROOT

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("curl") is None, reason="the tour is curl commands"),
]

# curl exits non-zero on an HTTP error (still printing the error envelope); the header stands in for the
# TLS-terminating proxy, since the live server's middleware may redirect plain HTTP (DEBUG off).
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --show-error -H 'X-Forwarded-Proto: https' "$@"; }
"""


def readme_tour() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## API quick tour", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_tour_runs_twice_without_an_error(live_server, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]  # whatever DEBUG says
    call_command("seed_demo", verbosity=0)  # what `make run` seeds: the tour logs in as demo-agent
    tour = readme_tour()
    assert "localhost:8000" in tour
    script = PRELUDE + tour.replace("localhost:8000", live_server.url.removeprefix("http://"))

    for run in (1, 2):
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"run {run}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert result.stderr == "", f"run {run}: {result.stderr}"
        assert '"success":false' not in result.stdout.replace(" ", ""), f"run {run}: {result.stdout}"
        for event_type in ("TaskCreated", "TaskAssigned", "TaskUpdated", "TaskStateChanged"):
            assert event_type in result.stdout, f"run {run}: no {event_type} in {result.stdout[-3000:]}"

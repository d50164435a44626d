"""Regenerate the generated sections of docs/architecture/workflow.md from the code.

    manage.py render_workflow_docs            # rewrite the sections between the GENERATED markers
    manage.py render_workflow_docs --check    # exit 1 when the doc differs from the code (CI)

The state diagrams come from the django-fsm definitions (``workflow.machines``), the error-code table
from the API's exception mapping; everything outside the markers is hand-written and left alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import APIException

from polaris import errors
from workflow.machines import edges_of, machine_describe
from workflow.models import ActionPlan, Task

DOC = Path(settings.BASE_DIR) / "docs" / "architecture" / "workflow.md"


def _marker(name: str, end: bool = False) -> str:
    return f"<!-- {'END' if end else 'BEGIN'} GENERATED: {name} (manage.py render_workflow_docs) -->"


def state_diagram(model) -> str:
    """A Mermaid ``stateDiagram-v2`` of one model's machine, plus its transition table."""
    machine = machine_describe(model)
    sources = {edge.source for edge in edges_of(model)}
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {machine['initial_state']}"]
    for edge in edges_of(model):
        guards = f" [{', '.join(edge.guards)}]" if edge.guards else ""
        lines.append(f"    {edge.source} --> {edge.target}: {edge.name}{guards}")
    lines += [f"    {state} --> [*]" for state in machine["states"] if state not in sources]
    lines.append("```")
    lines += ["", "| Transition | From | To | Guards |", "|---|---|---|---|"]
    for edge in edges_of(model):
        guards = ", ".join(f"`{guard}`" for guard in edge.guards) or "—"
        lines.append(f"| `{edge.name}` | `{edge.source}` | `{edge.target}` | {guards} |")
    return "\n".join(lines)


def state_machines() -> str:
    parts = []
    for title, model in (("Task", Task), ("ActionPlan", ActionPlan)):
        states = ", ".join(f"`{state}`" for state in machine_describe(model)["states"])
        parts += [f"### {title}", "", f"States: {states}.", "", state_diagram(model), ""]
    return "\n".join(parts).rstrip()


def _all_subclasses(cls: type[errors.DomainError]) -> list[type[errors.DomainError]]:
    found: list[type[errors.DomainError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def _domain_messages() -> dict[str, str]:
    """First docstring line (else the default message) of every ``DomainError`` subclass."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 — imports every view, hence every module defining errors
    messages: dict[str, str] = {}
    for cls in _all_subclasses(errors.DomainError):
        doc = (cls.__doc__ or "").strip().splitlines()
        messages.setdefault(cls.error_code, (doc[0] if doc else cls.default_message).replace("``", "`"))
    return messages


def _drf_message(exception: type[APIException]) -> str:
    text = re.sub(r'\s*"\{\w+\}"', "", str(exception.default_detail or "")).rstrip(".")
    return f"{text}." if text else ""


# The handler's own answers: ``error_response(status_code=status.HTTP_413_…, error_code="…", message="…")``.
_HANDLER_CODE = re.compile(
    r'status_code=status\.HTTP_(\d{3})_\w+,\s*error_code="([A-Z_]+)"(?:,\s*message="([^"]*)")?'
)


def error_codes() -> str:
    import inspect

    from polaris.api import exceptions as api_exceptions
    from polaris.api.exceptions import DOMAIN_STATUS, DRF_CODES

    rows: dict[str, tuple[int, str]] = {}
    domain = _domain_messages()
    for code, status in DOMAIN_STATUS.items():
        rows[code] = (status, domain.get(code, ""))
    for exception, code in DRF_CODES:
        if code not in rows:
            rows[code] = (exception.status_code, _drf_message(exception))
    for status_text, code, message in _HANDLER_CODE.findall(inspect.getsource(api_exceptions)):
        rows.setdefault(code, (int(status_text), message))
    lines = ["| HTTP | `error_code` | Meaning |", "|---|---|---|"]
    for code, (status, meaning) in sorted(rows.items(), key=lambda item: (item[1][0], item[0])):
        lines.append(f"| {status} | `{code}` | {meaning} |")
    return "\n".join(lines)


SECTIONS: dict[str, Callable[[], str]] = {"state-machines": state_machines, "error-codes": error_codes}


def render(text: str) -> str:
    """``text`` with every generated section replaced by what the code says now."""
    for name, build in SECTIONS.items():
        begin, end = _marker(name), _marker(name, end=True)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        match = pattern.search(text)
        if match is None:
            raise CommandError(f"{DOC.name} has no {name!r} section: add the markers\n{begin}\n{end}")
        text = f"{text[: match.start()]}{begin}\n{build()}\n{end}{text[match.end() :]}"
    return text


class Command(BaseCommand):
    help = "Regenerate the state diagrams and error codes in docs/architecture/workflow.md (--check: verify)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help="Fail when the document is out of date.")
        parser.add_argument("--path", type=Path, default=DOC, help="The document (default: %(default)s).")

    def handle(self, *args, check: bool = False, path: Path = DOC, **options) -> None:
        current = path.read_text()
        wanted = render(current)
        if current == wanted:
            self.stdout.write(f"{path.name} is up to date.")
            return
        if check:
            diff = "".join(
                difflib.unified_diff(
                    current.splitlines(True), wanted.splitlines(True), "documented", "code", n=1
                )
            )
            raise CommandError(
                f"{path} is out of date with the code; run `manage.py render_workflow_docs`.\n{diff}"
            )
        path.write_text(wanted)
        self.stdout.write(f"Updated {path}.")

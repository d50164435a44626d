"""The architecture doc's module map and import rules, checked against the tree so neither can drift.

``docs/architecture/workflow.md`` has two tables this test reads:
- *Layers*: each top-level package and the packages it may import (besides itself and third-party code);
- *Module map*: every module of those packages (``__init__`` and migrations aside) and what it holds.

Imports are read from the source with ``ast``: every ``import`` anywhere in a file, at module level or
inside a function, counts; only those under ``if TYPE_CHECKING:`` (never executed) do not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture" / "workflow.md"
PACKAGES = ("polaris", "outbox", "workflow", "sla", "routing", "automation", "careplans", "reports", "ops")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports at run time (``from a.b import c``: ``a.b`` and ``a.b.c``)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name resolves to the longest module it names)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(module, path):
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in modules:
                    if candidate != module:
                        targets.add(candidate)
                    break
        graph[module] = targets
    return graph


def layer_violations(graph: dict[str, set[str]], allowed: dict[str, set[str]]) -> list[str]:
    """Edges from one top-level package to another that ``allowed`` does not list."""
    problems = []
    for module, targets in sorted(graph.items()):
        source = module.split(".")[0]
        for target in sorted(targets):
            package = target.split(".")[0]
            if package != source and package not in allowed.get(source, set()):
                problems.append(f"{module} imports {target} ({source} may not import {package})")
    return problems


def cycles_within_packages(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, among modules of one top-level package."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def same_package_targets(module: str) -> list[str]:
        package = module.split(".")[0]
        return sorted(t for t in graph.get(module, ()) if t.split(".")[0] == package)

    def connect(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in same_package_targets(module):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading`` in the architecture doc (cells unquoted)."""
    text = DOC.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header row


def documented_layers() -> dict[str, set[str]]:
    return {
        row[0].rstrip("/"): {
            name.strip().strip("`").rstrip("/") for name in row[1].split(",") if name.strip()
        }
        - {"—", "nothing"}
        for row in doc_table("### Layers")
    }


# -- the checks ---------------------------------------------------------------------------------------------


def test_every_package_has_a_documented_layer():
    assert set(documented_layers()) == set(PACKAGES)


def test_imports_follow_the_documented_layers():
    graph = import_graph(module_files())
    assert layer_violations(graph, documented_layers()) == []


def test_the_ground_imports_no_app():
    # Spelled out as well as documented, so an edit of the doc's table cannot quietly allow it.
    layers = documented_layers()
    assert layers["polaris"] == set()
    assert layers["outbox"] == {"polaris"}
    assert not {"sla", "automation"} & layers["workflow"]
    assert "automation" not in layers["sla"]


def test_no_import_cycle_inside_a_package():
    assert cycles_within_packages(import_graph(module_files())) == []


def test_module_map_lists_every_module_and_nothing_else():
    documented = {row[0] for row in doc_table("### Module map")}
    actual = {
        str(path.relative_to(ROOT))
        for module, path in module_files().items()
        if path.name != "__init__.py" and "migrations" not in path.parts
    }
    assert sorted(actual - documented) == [], "modules missing from the module map"
    assert sorted(documented - actual) == [], "the module map names files that do not exist"


def test_no_module_is_much_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in module_files().values()
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > 420
    }
    # The predicate language reads best as one file (a parser, a compiler and its explanations).
    long.pop("automation/predicates.py", None)
    assert long == {}


ROLE_ATTRIBUTES = {"is_admin_role", "is_agency_role", "is_client_role"}
# The role and scope rules are written once (polaris/access.py); accounts defines the attributes.
ROLE_RULE_HOMES = ("polaris/access.py", "polaris/accounts/")


def role_attribute_reads(source: str) -> list[str]:
    """``line attribute`` for each read of a User role attribute in ``source``."""
    tree = ast.parse(source)
    return [
        f"{node.lineno} {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ROLE_ATTRIBUTES
    ]


def test_role_checks_live_in_the_access_rules_only():
    reads = [
        f"{name}:{read}"
        for path in module_files().values()
        if not (name := str(path.relative_to(ROOT))).startswith(ROLE_RULE_HOMES)
        for read in role_attribute_reads(path.read_text())
    ]
    assert reads == [], "use polaris.access (is_admin, is_agent, scope_filter, …) instead"


# -- the checker itself can fail ----------------------------------------------------------------------------


def test_the_role_check_finder_sees_an_inline_check():
    source = "def scope(user):\n    if user.is_agency_role:\n        return user.agency_id\n"
    assert role_attribute_reads(source) == ["2 is_agency_role"]


def test_the_checker_reports_a_forbidden_edge_and_a_cycle(tmp_path):
    graph = {
        "polaris.errors": {"workflow.models"},
        "workflow.models": {"workflow.selectors"},
        "workflow.selectors": {"workflow.models", "polaris.errors"},
    }
    assert layer_violations(graph, {"polaris": set(), "workflow": {"polaris"}}) == [
        "polaris.errors imports workflow.models (polaris may not import workflow)"
    ]
    assert cycles_within_packages(graph) == [["workflow.models", "workflow.selectors"]]


def test_function_level_and_relative_imports_count(tmp_path):
    source = tmp_path / "engine.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .models import Trigger\n"
        "if TYPE_CHECKING:\n    from .typing_only import Thing\n"
        "def handle():\n    from automation.actions import run\n"
    )
    names = imported_names("automation.engine", source)
    assert {"automation.models", "automation.actions.run"} <= names
    assert not any(re.search(r"typing_only", name) for name in names)


@pytest.mark.parametrize("heading", ["### Layers", "### Module map"])
def test_the_doc_has_the_tables(heading):
    assert doc_table(heading)


# -- one writer of events, one claim primitive, raw SQL in one package --------------------------------------

APPS = ("outbox", "workflow", "sla", "routing", "automation", "careplans", "reports", "ops")
OUTBOX_WRITER = "outbox/append.py"
# Building an OutboxEvent that is never saved: the trigger dry-run evaluates a hypothetical event.
OUTBOX_EVENT_UNSAVED = ("automation/dry_run.py",)
# The precompiled writers that insert rows: only the outbox writer calls them (and they are defined in
# polaris/sql/precompiled.py); the set-based advance's statement likewise.
ROW_WRITERS = {"row_insert", "rows_insert", "rows_update_then_insert", "aggregates_advance_sql"}
MANAGER_WRITES = {"create", "bulk_create", "get_or_create", "update_or_create"}
SQL_PACKAGE = "polaris/sql/"
CLAIM_PRIMITIVE = "polaris/leases.py"
# Another app's write API called for a domain action (the task's own service, which writes the task and its
# event itself): automation's actions create and move tasks as a user would.
CROSS_APP_SERVICES = {
    ("automation.actions.create_task", "workflow.services.tasks"),
    ("automation.actions.update_task_state", "workflow.services.tasks"),
    # Care plans make a plan through the plan's own create service, and cancel or re-date a plan's tasks (a
    # cancelled predecessor's rule, a migration) through the task's own services, as a user would.
    ("careplans.services.instantiation", "workflow.services.action_plans"),
    # ... and gives a plan's tasks their blueprints' checklists and the plan its template's approval
    # policy through the workflow's own checklist and approval services.
    ("careplans.services.instantiation", "workflow.services.checklists"),
    ("careplans.services.instantiation", "workflow.services.approvals"),
    # ... and checks a template's approval policy with the plans' one validator (and its bounds, for the
    # schema), so a policy a template stores is one its plans take.
    ("careplans.services.templates", "workflow.services.approvals"),
    ("careplans.api.serializers", "workflow.services.approvals"),
    ("careplans.readiness", "workflow.services.tasks"),
    ("careplans.services.plan_migrations", "workflow.services.tasks"),
    # Routing assigns through the task's own assignment service (one TaskAssigned, the SLA lock, the
    # counters' signal), and automation's assign action routes as POST /tasks/{id}/route does.
    ("routing.services.route", "workflow.services.tasks"),
    ("automation.actions.assign", "routing.services.route"),
}


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, text)`` of every string literal and f-string except docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            found.append((node.lineno, ast.unparse(node)))  # with its expressions: a table named by a model
    return found


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def outbox_writes(name: str, source: str) -> list[str]:
    """Where ``source`` (the module at path ``name``) writes outbox rows other than through the outbox
    writer: builds an ``OutboxEvent(…)``, calls a precompiled row writer, creates through the model's
    manager, or holds an INSERT naming the outbox table."""
    if name == OUTBOX_WRITER:
        return []
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = _called_name(node)
        if called == "OutboxEvent" and name not in OUTBOX_EVENT_UNSAVED:
            found.append(f"{name}:{node.lineno} OutboxEvent(…)")
        elif called in ROW_WRITERS and not name.startswith(SQL_PACKAGE):
            found.append(f"{name}:{node.lineno} {called}(…)")
        elif called in MANAGER_WRITES and "OutboxEvent" in ast.unparse(node.func):
            found.append(f"{name}:{node.lineno} {ast.unparse(node.func)}(…)")
    for line, text in _strings(tree):
        names_outbox = "outbox" in text.lower()
        if "INSERT INTO" in text.upper() and names_outbox and not name.startswith(SQL_PACKAGE):
            found.append(f"{name}:{line} INSERT INTO the outbox")
    return sorted(found)


def skip_locked_claims(name: str, source: str) -> list[str]:
    """Where ``source`` claims rows with ``SKIP LOCKED`` itself (in SQL or through the ORM) instead of
    through the claim primitive."""
    if name == CLAIM_PRIMITIVE or name.startswith(SQL_PACKAGE):
        return []
    tree = ast.parse(source)
    found = [
        f"{name}:{line} SKIP LOCKED in SQL" for line, text in _strings(tree) if "SKIP LOCKED" in text.upper()
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "skip_locked":
            found.append(f"{name}:{node.value.lineno} skip_locked=")
    return sorted(found)


def cross_app_service_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports of another app's ``services`` module or package (the ground's are every app's to use)."""
    problems = []
    for module, targets in sorted(graph.items()):
        source = module.split(".")[0]
        for target in sorted(targets):
            package = target.split(".")[0]
            foreign = package in APPS and package != source
            if foreign and "services" in target.split(".") and (module, target) not in CROSS_APP_SERVICES:
                problems.append(f"{module} imports {target}")
    return problems


def _sources() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in module_files().values()}


def test_one_writer_of_outbox_rows():
    found = [hit for name, source in _sources().items() for hit in outbox_writes(name, source)]
    assert found == [], f"append events through {OUTBOX_WRITER} (outbox.append) only"


def test_one_claim_primitive():
    found = [hit for name, source in _sources().items() for hit in skip_locked_claims(name, source)]
    assert found == [], f"claim through {CLAIM_PRIMITIVE} (Lease, claim_due) only"


def test_no_app_imports_another_apps_services():
    assert cross_app_service_imports(import_graph(module_files())) == []


def test_the_writer_the_claim_and_the_services_checks_can_fail():
    writer = (
        "from outbox.models import OutboxEvent\n"
        "from polaris.sql.precompiled import row_insert\n"
        "def fire(rows):\n"
        "    row_insert(OutboxEvent(event_type='TimerFired'))\n"
        "    OutboxEvent.objects.bulk_create([])\n"
        "    sql = f'INSERT INTO {OutboxEvent._meta.db_table} (id) SELECT 1'\n"
    )
    assert outbox_writes("automation/timers.py", writer) == [
        "automation/timers.py:4 OutboxEvent(…)",
        "automation/timers.py:4 row_insert(…)",
        "automation/timers.py:5 OutboxEvent.objects.bulk_create(…)",
        "automation/timers.py:6 INSERT INTO the outbox",
    ]
    assert outbox_writes(OUTBOX_WRITER, writer) == []
    claimer = (
        '"""Claims with FOR UPDATE SKIP LOCKED (a docstring may say so)."""\n'
        "def claim(qs):\n"
        "    qs.select_for_update(skip_locked=True)\n"
        "    return 'SELECT id FROM t FOR UPDATE SKIP LOCKED'\n"
    )
    assert skip_locked_claims("sla/scan.py", claimer) == [
        "sla/scan.py:3 skip_locked=",
        "sla/scan.py:4 SKIP LOCKED in SQL",
    ]
    assert skip_locked_claims(CLAIM_PRIMITIVE, claimer) == []
    graph = {"sla.clock": {"workflow.services.events", "workflow.events", "polaris.idempotency.services"}}
    assert cross_app_service_imports(graph) == ["sla.clock imports workflow.services.events"]

"""docs/architecture/workflow.md: its generated sections match the code, and drift fails the build."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from workflow.machines import Edge, edges_of
from workflow.management.commands import render_workflow_docs as command
from workflow.models import ActionPlan, Task

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture" / "workflow.md"


def test_the_document_is_up_to_date_with_the_state_machines_and_error_codes():
    # Fails when a transition, guard, state or error code changes without `manage.py render_workflow_docs`.
    call_command("render_workflow_docs", "--check")


@pytest.mark.parametrize("model", [Task, ActionPlan])
def test_every_fsm_edge_is_drawn(model):
    text = DOC.read_text()
    for edge in edges_of(model):
        guards = f" [{', '.join(edge.guards)}]" if edge.guards else ""
        assert f"    {edge.source} --> {edge.target}: {edge.name}{guards}\n" in text


def test_a_new_transition_in_code_makes_the_check_fail(monkeypatch):
    real = command.edges_of

    def with_extra_edge(model):
        edges = real(model)
        if model is Task:
            edges.append(Edge("reopen", "completed", "in_progress", ("has_assignee",)))
        return edges

    monkeypatch.setattr(command, "edges_of", with_extra_edge)
    with pytest.raises(CommandError, match="out of date") as failure:
        call_command("render_workflow_docs", "--check")
    assert "+    completed --> in_progress: reopen [has_assignee]" in str(failure.value)


def test_a_hand_edit_inside_a_generated_section_is_caught_and_repaired(tmp_path):
    copy = tmp_path / "workflow.md"
    copy.write_text(DOC.read_text().replace("new --> in_progress: start", "new --> completed: start", 1))
    with pytest.raises(CommandError, match="out of date"):
        call_command("render_workflow_docs", "--check", "--path", str(copy))
    call_command("render_workflow_docs", "--path", str(copy))
    assert copy.read_text() == DOC.read_text()


def test_text_outside_the_markers_is_left_alone(tmp_path):
    copy = tmp_path / "workflow.md"
    copy.write_text(DOC.read_text() + "\nA hand-written closing note.\n")
    call_command("render_workflow_docs", "--path", str(copy))
    assert copy.read_text().endswith("\nA hand-written closing note.\n")


def test_missing_markers_are_reported(tmp_path):
    copy = tmp_path / "workflow.md"
    copy.write_text("# No generated sections here\n")
    with pytest.raises(CommandError, match="add the markers"):
        call_command("render_workflow_docs", "--check", "--path", str(copy))


def test_the_document_has_the_required_sections():
    text = DOC.read_text()
    for heading in (
        "## State machines",
        "## From a transition to its effects",
        "## SLA lifecycle",
        "## The event envelope",
        "## Error codes",
        "## Metrics",
    ):
        assert heading in text
    assert "sequenceDiagram" in text
    assert text.count("stateDiagram-v2") >= 3  # Task, ActionPlan, SLA record

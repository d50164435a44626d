"""Changing a new task's service area or task type re-matches its SLA config (in the edit's transaction)."""

import pytest
import time_machine

from sla.models import SLAConfig, SLARecord
from tests.sla.conftest import MONDAY_10
from workflow.services.tasks import task_transition, task_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def configs(intake_config):
    # The data migration's default (a transactional test elsewhere may have flushed it).
    assessment, _ = SLAConfig.objects.get_or_create(
        task_type="assessment",
        service_area="",
        active=True,
        defaults={"name": "Assessment (default)", "target_minutes": 240},
    )
    return {"intake": intake_config, "assessment": assessment}


def test_a_running_record_takes_the_new_configs_snapshot_and_keeps_its_start(make_task, agent, configs):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(task_type="intake")
    record = SLARecord.objects.get(task=task)
    assert record.target_minutes == 60
    with time_machine.travel(MONDAY_10.replace(minute=30), tick=False):
        task_update(task_id=task.pk, actor=agent, changes={"task_type": "assessment"})
    record.refresh_from_db()
    assert (record.config, record.target_minutes, record.status) == (configs["assessment"], 240, "running")
    assert record.started_at == MONDAY_10
    assert record.due_at == MONDAY_10.replace(hour=14)
    assert record.warnings_sent == []


def test_no_config_any_more_removes_the_record_and_a_new_match_starts_one(make_task, agent, configs):
    task = make_task(task_type="intake", service_area="housing")
    task_update(task_id=task.pk, actor=agent, changes={"task_type": "unmatched-type"})
    assert not SLARecord.objects.filter(task=task).exists()
    task_update(task_id=task.pk, actor=agent, changes={"task_type": "intake"})
    record = SLARecord.objects.get(task=task)
    assert (record.config, record.started_at) == (configs["intake"], task.created_at)


def test_other_edits_and_a_breached_record_are_left_alone(make_task, agent, configs):
    task = make_task(task_type="intake")
    record = SLARecord.objects.get(task=task)
    task_update(task_id=task.pk, actor=agent, changes={"title": "Renamed", "priority": "high"})
    assert SLARecord.objects.get(task=task).due_at == record.due_at
    SLARecord.objects.filter(pk=record.pk).update(status="breached")
    task_update(task_id=task.pk, actor=agent, changes={"task_type": "assessment"})
    record.refresh_from_db()
    assert (record.status, record.config) == ("breached", configs["intake"])


def test_the_type_is_fixed_once_work_started(make_task, agent, configs):
    from polaris.errors import ValidationFailed

    task = make_task(task_type="intake")
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    with pytest.raises(ValidationFailed):
        task_update(task_id=task.pk, actor=agent, changes={"task_type": "assessment"})
    assert SLARecord.objects.get(task=task).config == configs["intake"]

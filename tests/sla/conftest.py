"""SLA fixtures: configs and calendars built through the services, and a way to move a task."""

from datetime import UTC, datetime

import pytest

from sla.configs import sla_config_create
from sla.models import BusinessCalendar, SLAConfig
from workflow.services.tasks import task_transition

# A Monday, 10:00 UTC.
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def intake_config(db):
    """The default intake config (data migration): 60 minutes, 24x7, warn at 75 %, pause when blocked."""
    # get_or_create: a transactional test elsewhere may have flushed the migration's rows.
    config, _ = SLAConfig.objects.get_or_create(
        task_type="intake",
        service_area="",
        active=True,
        defaults={"name": "Intake (default)", "target_minutes": 60},
    )
    return config


@pytest.fixture
def make_config(db):
    def make(**fields):
        fields.setdefault("name", f"config-{SLAConfig.objects.count() + 1}")
        fields.setdefault("target_minutes", 60)
        return sla_config_create(actor=None, **fields)

    return make


@pytest.fixture
def office_calendar(db):
    """Mon-Fri 09:00-17:00 in London."""
    return BusinessCalendar.objects.create(name="London office", time_zone="Europe/London")


@pytest.fixture
def move(agent):
    def move_task(task, target, reason=""):
        moved, _ = task_transition(task_id=task.pk, target_state=target, actor=agent, reason=reason)
        return moved

    return move_task

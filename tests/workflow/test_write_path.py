"""The transition write path is four statements and a commit; each one written by polaris.precompiled."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def test_a_transition_is_four_statements(make_task, agent, settings):
    settings.OUTBOX_KICK_ON_COMMIT = False
    task = make_task()
    with CaptureQueriesContext(connection) as captured:
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)

    statements = [query["sql"] for query in captured.captured_queries]
    # Inside the test's transaction the service's atomic() is a savepoint; in production, BEGIN/COMMIT.
    body = [sql for sql in statements if sql.split()[0] not in ("SAVEPOINT", "RELEASE")]
    assert [sql.split()[0] for sql in body] == ["SELECT", "UPDATE", "INSERT", "SELECT"], body
    task_read, advance, event, sla_lock = body
    assert '"workflow_task"' in task_read
    assert '"agency_id" = ' in task_read
    assert advance.startswith('UPDATE "workflow_task" SET "state" = ')
    assert '"version" = ' in advance
    assert event.startswith('INSERT INTO "outbox_outboxevent"')
    assert '"sla_slarecord"' in sla_lock
    assert sla_lock.endswith("FOR UPDATE")

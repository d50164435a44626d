"""The transition write path is two statements and a commit; each one written by polaris.sql.precompiled."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def test_a_transition_is_two_statements(make_task, agent, settings):
    settings.OUTBOX_KICK_ON_COMMIT = False
    task = make_task()
    with CaptureQueriesContext(connection) as captured:
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)

    statements = [query["sql"] for query in captured.captured_queries]
    # Inside the test's transaction the service's atomic() is a savepoint; in production, BEGIN/COMMIT.
    body = [sql for sql in statements if sql.split()[0] not in ("SAVEPOINT", "RELEASE")]
    assert [sql.split()[0] for sql in body] == ["SELECT", "WITH"], body
    task_read, write = body
    assert '"workflow_task"' in task_read
    assert '"agency_id" = ' in task_read
    # One statement: the compare-and-swap UPDATE, the event INSERT (only if the UPDATE claimed the row),
    # and the lock of the task's SLA record (registered by the sla app: workflow.extensions).
    assert write.startswith('WITH updated AS (UPDATE "workflow_task" SET "state" = ')
    assert 'AND "version" = ' in write
    assert 'inserted AS (INSERT INTO "outbox_outboxevent"' in write
    assert 'FROM "sla_slarecord" WHERE "task_id" = ' in write
    assert "FOR UPDATE" in write

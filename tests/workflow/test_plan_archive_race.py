"""The plan row is locked on archive and when a task joins a plan: with two real connections racing (one
archives the plan, the other attaches an open task to it), never an archived plan with an open task."""

import threading
import time

import pytest
from django.db import connection, transaction

from polaris.errors import GuardFailed
from workflow.errors import ActionPlanClosed
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
from workflow.services.action_plans import action_plan_activate, action_plan_archive, action_plan_create
from workflow.services.tasks import task_create, task_transition, task_update

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 3


def _someone_waits_for_a_lock(timeout: float = 3.0) -> bool:
    """Poll (from the holder's own connection) until another backend of this database waits on a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Activity is snapshotted once per transaction, and the holder is inside one.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.01)
    return False


def _race(first, second) -> list[BaseException | None]:
    """``first`` and ``second`` on two threads, each with its own connection: ``first`` runs its statements
    and keeps its transaction open until ``second`` waits on a lock it holds (or, with no lock between
    them, a few seconds: then both commit and the invariant decides)."""
    outcomes: list[BaseException | None] = [None, None]
    first_ran = threading.Event()

    def run(index, work, hold=None):
        try:
            with transaction.atomic():
                work()
                if hold is not None:
                    hold()
        except Exception as exc:
            outcomes[index] = exc
        finally:
            first_ran.set()
            connection.close()

    def hold():
        first_ran.set()
        _someone_waits_for_a_lock()

    def run_second():
        first_ran.wait(10)
        run(1, second)

    threads = [threading.Thread(target=run, args=(0, first, hold)), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def _active_plan_with_a_closed_task(agent, client_user, agency):
    plan_task_args = {"actor": agent, "task_type": "intake", "client": client_user, "agency": agency}
    plan = action_plan_create(actor=agent, title="Plan", client=client_user, agency=agency)
    done = task_create(title="Done", assignee=agent, action_plan=plan, **plan_task_args)
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    task_transition(task_id=done.pk, target_state=TaskState.CANCELLED, actor=agent)
    return plan, plan_task_args


def _no_archived_plan_with_an_open_task() -> None:
    open_in_archived = Task.objects.filter(
        action_plan__state=ActionPlanState.ARCHIVED,
        state__in=(TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED),
    )
    assert not open_in_archived.exists()


@pytest.mark.parametrize("archive_first", [True, False], ids=["archive-first", "attach-first"])
def test_archive_races_a_task_moving_into_the_plan(agent, client_user, agency, archive_first):
    for _ in range(ROUNDS):
        plan, args = _active_plan_with_a_closed_task(agent, client_user, agency)
        loose = task_create(title="Loose", **args)

        def archive(plan=plan):
            action_plan_archive(action_plan_id=plan.pk, actor=agent)

        def attach(plan=plan, loose=loose):
            task_update(task_id=loose.pk, actor=agent, changes={"action_plan": plan})

        outcomes = _race(archive, attach) if archive_first else _race(attach, archive)
        _no_archived_plan_with_an_open_task()
        plan.refresh_from_db()
        loose.refresh_from_db()
        archived, attached = outcomes if archive_first else outcomes[::-1]
        if plan.state == ActionPlanState.ARCHIVED:
            assert loose.action_plan_id is None
            assert isinstance(attached, ActionPlanClosed)
        else:
            assert loose.action_plan_id == plan.pk  # attached first: the archive's guard saw it
            assert isinstance(archived, GuardFailed)


@pytest.mark.parametrize("archive_first", [True, False], ids=["archive-first", "create-first"])
def test_archive_races_a_task_created_in_the_plan(agent, client_user, agency, archive_first):
    for _ in range(ROUNDS):
        plan, args = _active_plan_with_a_closed_task(agent, client_user, agency)

        def archive(plan=plan):
            action_plan_archive(action_plan_id=plan.pk, actor=agent)

        def create(plan=plan, args=args):
            # The plan as the API hands it over: read before the race, not locked.
            task_create(title="New", action_plan=ActionPlan.objects.get(pk=plan.pk), **args)

        _race(archive, create) if archive_first else _race(create, archive)
        _no_archived_plan_with_an_open_task()

"""The signals the workflow sends inside its write transactions, so subscribers (``sla``, ``routing``) can
react without workflow importing them.

``task_changed(sender=Task, task=…, event=…, context=…, locked_rows=…, source=…, target=…, changes=…)`` is
sent once a task's transition or edit is written (the compare-and-swap and its event row), inside the same
``transaction.atomic()``, so a receiver's writes commit or roll back with it:

- a transition (sent by ``workflow.receivers``): ``source``/``target`` are the states, ``changes`` is empty;
- an edit (sent by ``workflow.services.edits``): ``source``/``target`` are ``None``, ``changes`` is
  ``{field: {"old", "new"}}``;
- ``event`` is the event just written; ``locked_rows`` is ``{model: row or None}`` for the row registered in
  ``workflow.extensions.task_locked_rows``, which the write's statement read and locked (so a receiver
  needs no query of its own).

``task_created(sender=Task, task=…, event=…, context=…)`` is sent by ``task_create`` once the task and its
``TaskCreated`` event are written, inside the creating transaction (``routing`` assigns an unassigned task
there: its ``TaskAssigned`` follows ``TaskCreated`` in the stream and commits or rolls back with it).

``tasks_created(sender=Task, tasks=[…], context=…)`` is sent when several tasks are written at once, by
multi-row inserts rather than ``task_create`` (a plan made from a template), inside the creating
transaction once their ``TaskCreated`` events are written: what ``task_created`` does for one task, a
receiver does for these (``routing`` assigns the unassigned ones a rule matches).
"""

from django.dispatch import Signal

task_changed = Signal()
task_created = Signal()
tasks_created = Signal()

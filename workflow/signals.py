"""Signals the workflow sends inside its write transactions, so subscribers (``sla``) can react without
workflow importing them.

``task_updated(sender=Task, task=…, changes={field: {"old", "new"}}, context=EventContext)`` is sent by
``task_update``/``task_assign`` after the compare-and-swap and the event row, inside the same
``transaction.atomic()``: a receiver's writes commit or roll back with the edit.
"""

from django.dispatch import Signal

task_updated = Signal()

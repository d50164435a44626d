"""Celery tasks of the workflow app: thin wrappers that call services."""

from celery import shared_task


@shared_task(name="workflow.outbox_dispatch", ignore_result=True)
def outbox_dispatch_task() -> None:
    """Drain due outbox events (body supplied by the dispatcher)."""

"""Celery interface of routing: the counters' repair (beat, hourly)."""

from celery import shared_task

from .load import load_repair


@shared_task(name="routing.load_repair", ignore_result=True, soft_time_limit=600, time_limit=660)
def load_repair_task() -> int:
    return load_repair()

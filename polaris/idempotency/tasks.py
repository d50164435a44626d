"""The idempotency app's Celery task: forget stored responses past their TTL (run hourly by beat)."""

import logging

from celery import shared_task

from .services import idempotency_keys_purge

logger = logging.getLogger(__name__)


@shared_task(name="idempotency.keys_purge", ignore_result=True, soft_time_limit=300, time_limit=330)
def idempotency_keys_purge_task() -> int:
    """Forget ``Idempotency-Key`` responses older than ``IDEMPOTENCY_KEY_TTL_HOURS``."""
    deleted = idempotency_keys_purge()
    if deleted:
        logger.info("purged idempotency keys", extra={"deleted": deleted})
    return deleted

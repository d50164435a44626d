"""The accounts app's Celery task: forget refresh tokens past their expiry (run hourly by beat)."""

import logging

from celery import shared_task

from .services import expired_tokens_purge

logger = logging.getLogger(__name__)


@shared_task(name="accounts.expired_tokens_purge", ignore_result=True, soft_time_limit=300, time_limit=330)
def expired_tokens_purge_task() -> int:
    """Drop the records of expired refresh tokens (and their blacklist entries)."""
    deleted = expired_tokens_purge()
    if deleted:
        logger.info("purged expired refresh tokens", extra={"deleted": deleted})
    return deleted

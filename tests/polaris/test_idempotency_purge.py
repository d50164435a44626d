"""Beat's housekeeping: expired Idempotency-Key responses are purged, fresh ones kept."""

from datetime import timedelta

import pytest
from django.utils import timezone

from polaris.idempotency.models import IdempotencyKey
from polaris.idempotency.tasks import idempotency_keys_purge_task


@pytest.mark.django_db
def test_the_purge_task_drops_only_expired_keys(settings, agent):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    common = {"user": agent, "scope": "POST tasks", "request_hash": "h", "response_status": 201}
    IdempotencyKey.objects.create(
        key="old", created_at=timezone.now() - timedelta(hours=25), response_body={}, **common
    )
    IdempotencyKey.objects.create(
        key="fresh", created_at=timezone.now() - timedelta(hours=23), response_body={}, **common
    )

    assert idempotency_keys_purge_task.run() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]

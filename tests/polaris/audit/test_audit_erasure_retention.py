"""The audit log under erasure (the client's name leaves every entry) and retention (old entries go)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from polaris.accounts.services import agency_get_or_create, user_upsert
from polaris.audit.models import AuditEntry
from polaris.audit.services import audit_entries_trim, audit_record, audit_rewrite_allow
from polaris.erasure import erasers
from workflow.services.erasure import client_erase

pytestmark = pytest.mark.django_db


def test_erasing_a_client_removes_their_name_from_the_audit_log_and_records_the_erasure(admin_user):
    agency = agency_get_or_create(name="Harbour")
    client, _ = user_upsert(username="marker-zq81", password="pw", role="client", agency=agency)
    assert AuditEntry.objects.filter(object_type="user", object_id=str(client.pk)).exists()
    assert "audit_entries" in erasers()

    dry = client_erase(client_id=client.pk, actor=admin_user, dry_run=True)
    assert dry["counts"]["audit_entries"] >= 1
    assert AuditEntry.objects.filter(after__username="marker-zq81").exists()  # a dry run changes nothing

    result = client_erase(client_id=client.pk, actor=admin_user)
    assert result["counts"]["audit_entries"] == dry["counts"]["audit_entries"]
    for entry in AuditEntry.objects.all():
        assert "marker-zq81" not in f"{entry.actor_username} {entry.before} {entry.after}"
    erased = AuditEntry.objects.get(action="client.erased")
    assert erased.object_id == str(client.pk)
    assert erased.actor_id == admin_user.pk


def test_retention_trims_old_entries_in_batches_and_keeps_recent_ones(settings, admin_user):
    settings.AUDIT_RETENTION_DAYS = 30
    for _ in range(5):
        audit_record(actor=admin_user, action="trigger.created", object_type="trigger", object_id=1)
    recent = audit_record(actor=admin_user, action="trigger.updated", object_type="trigger", object_id=1)
    old = timezone.now() - timedelta(days=31)
    with transaction.atomic():
        audit_rewrite_allow()
        AuditEntry._base_manager.exclude(pk=recent.pk).update(at=old)
    assert audit_entries_trim(batch=2) == 5
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == [recent.pk]


def test_retention_zero_keeps_everything(settings, admin_user):
    settings.AUDIT_RETENTION_DAYS = 0
    audit_record(actor=admin_user, action="trigger.created", object_type="trigger", object_id=1)
    assert audit_entries_trim(batch=10) == 0
    assert AuditEntry.objects.count() == 1

"""``Idempotency-Key`` for every state-changing endpoint: a repeated request replays the first response.

``idempotent_response`` runs the endpoint's work and builds its response inside one transaction, with or
without a key: so everything the response shows is read before the commit, and nothing after the commit
can turn a change that happened into an error. With a key, the key row is written in that same
transaction as the change it records, so either both exist or neither does. Two concurrent requests with
one key both run, but only one can insert the key (unique constraint on user + scope + key): the loser's
transaction, its change included, rolls back and it replays the winner's response. Only successful
responses are kept; a failed request changed nothing and may be retried with the same key. A view whose
response holds something that must be shown only once (a secret) passes ``redact``: the record keeps the
redacted body, so a replay answers the same status with the secret withheld, and it is never stored.

A view whose ``perform`` is one service call (a transition, an edit, a create) passes ``single_write=True``:
that service's own ``atomic()`` then opens no savepoint inside ours. A savepoint lets a caller survive the
service's failure and go on in the same transaction; here nothing does — any exception out of ``perform``
rolls the whole request back — so it would only cost two round trips (SAVEPOINT, RELEASE). Blocks nested
deeper keep theirs.

One exception to "one transaction": a view whose work is many independent changes (bulk) passes
``atomic_without_key=False``. Without a key its ``perform`` then runs outside any transaction and commits
each change on its own (no row lock held past its own change, one failure undoes no other); with a key
the changes still run inside the one transaction (as savepoints), because the key's record must commit
with them for a retry to replay rather than repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.errors import Conflict, ValidationFailed
from polaris.idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
# Visible ASCII only: keys end up in logs and in a varchar(255).
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKeyReused(Conflict):
    """The key was already used by this caller for a request with a different body."""

    error_code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was already used with a different request body."


def _cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def request_fingerprint(data: Any) -> str:
    """SHA-256 of the request body in a canonical JSON form (key order and spacing do not matter)."""
    if hasattr(data, "lists"):  # QueryDict from form posts
        data = dict(data.lists())
    try:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    except RecursionError:
        raise ValidationFailed(details={"non_field_errors": ["The body is nested too deeply."]}) from None
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(*, user: Any, scope: str, key: str, fingerprint: str) -> Response | None:
    record = IdempotencyKey.objects.filter(user=user, scope=scope, key=key, created_at__gte=_cutoff()).first()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(details={"idempotency_key": key})
    return Response(record.response_body, status=record.response_status, headers={REPLAY_HEADER: "true"})


@contextlib.contextmanager
def _next_savepoint_skipped() -> Iterator[None]:
    """The next block nested in the current transaction opens no savepoint: it behaves as
    ``atomic(savepoint=False)`` (a failure in it dooms the enclosing transaction, which the caller
    guarantees is rolled back whole). Django decides per block by ``connection.savepoint()``'s answer;
    ``None`` is what it returns where savepoints are not possible."""
    connection = transaction.get_connection()

    def skipped() -> None:
        del connection.savepoint  # once: deeper blocks get their savepoints again
        return None

    connection.savepoint = skipped
    try:
        yield
    finally:
        connection.__dict__.pop("savepoint", None)


def idempotent_response(
    *,
    request: Request,
    scope: str,
    perform: Callable[[], Response],
    redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    atomic_without_key: bool = True,
    single_write: bool = False,
) -> Response:
    """Run ``perform`` (which changes something and returns its response) in one transaction, at most once
    per ``Idempotency-Key``.

    ``perform`` must build its whole response (serializers included) before returning: it runs inside the
    transaction, so its reads see the change and cannot meet a connection lost after the commit. Without
    the header it runs once, in the transaction. ``scope`` names the endpoint and, for one object's
    endpoints, the object (``"POST workflow/tasks/<id>/transition"``): one key may serve different
    endpoints and objects. ``redact`` (optional) maps the rendered body to what the record keeps and
    replays; the first response is sent as ``perform`` built it. ``atomic_without_key=False``: without the
    header ``perform`` runs in no transaction of ours and manages its own (see the module docstring); its
    response must then be built from what those transactions returned, not read after them.
    ``single_write=True``: ``perform`` calls one service and lets its errors propagate; that service's
    ``atomic()`` runs without a savepoint of its own (see the module docstring).
    """
    savepoints = _next_savepoint_skipped if single_write else contextlib.nullcontext
    key = request.headers.get(HEADER)
    if key is None:
        if not atomic_without_key:
            return perform()
        with transaction.atomic(), savepoints():
            return perform()
    if not _VALID_KEY.match(key):
        raise ValidationFailed(details={HEADER: ["Use 1 to 255 visible ASCII characters."]})
    user: Any = request.user  # authenticated: the create views require it
    fingerprint = request_fingerprint(request.data)
    replay = _replay(user=user, scope=scope, key=key, fingerprint=fingerprint)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            # An expired record would block the insert below; past the TTL the key is free again.
            IdempotencyKey.objects.filter(user=user, scope=scope, key=key, created_at__lt=_cutoff()).delete()
            with savepoints():
                response = perform()
            if 200 <= response.status_code < 300:
                # Stored exactly as the client received it (UUIDs and datetimes as strings), redacted.
                body = json.loads(JSONRenderer().render(response.data))
                IdempotencyKey.objects.create(
                    user=user,
                    scope=scope,
                    key=key,
                    request_hash=fingerprint,
                    response_status=response.status_code,
                    response_body=redact(body) if redact else body,
                )
    except IntegrityError:
        # A concurrent request with the same key committed first; ours rolled back entirely.
        replay = _replay(user=user, scope=scope, key=key, fingerprint=fingerprint)
        if replay is None:
            raise
        return replay
    return response


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete records older than ``IDEMPOTENCY_KEY_TTL_HOURS``; returns how many. For a periodic task."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=_cutoff(now)).delete()
    return deleted

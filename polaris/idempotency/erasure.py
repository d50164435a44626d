"""The idempotency app's eraser: stored responses that name a client, or that the client's requests stored,
keep their status and shape with every free text scrubbed (a retry still replays, without the words)."""

from __future__ import annotations

from polaris.erasure import names_client, rows_erase

from .models import IdempotencyKey


def idempotency_responses_erase(*, client_id: int, dry_run: bool) -> int:
    """Scrub stored responses of ``client_id``'s requests and those whose body names the client (the
    table holds ``IDEMPOTENCY_KEY_TTL_HOURS`` of responses, so reading it whole is bounded)."""

    def concerns_client(row: dict) -> bool:
        return row["user_id"] == client_id or names_client(row["response_body"], client_id)

    return rows_erase(
        IdempotencyKey.objects.all(),
        json_fields=("response_body",),
        where=concerns_client,
        read_fields=("user_id",),
        dry_run=dry_run,
    )

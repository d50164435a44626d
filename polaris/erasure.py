"""Erasing a client's personal data: the registry every app adds its eraser to, and the rules they share.

An eraser is ``func(*, client_id: int, dry_run: bool) -> int`` (the rows it changed, or would change on a
dry run). Each app registers the erasers of the rows it owns in its ``AppConfig.ready()`` with
``eraser_register``; ``workflow.services.erasure.client_erase`` runs them all in one transaction, in
registration order (installed-app order), and records one ``ClientErased`` event with the counts.

The rules every eraser applies, written once:
- Free text is replaced, never deleted with its row: a string under one of ``FREE_TEXT_KEYS`` (at any depth
  of a JSON value: an event payload, a stored response) becomes ``ERASED``; an empty one stays empty. So ids,
  states, timings, counts and SLA figures survive, and event sequences keep every position.
- ``text_digest`` is how free text enters events from now on where a change must be visible but its
  words need not be (a description's old and new value): its length and a keyed digest, never the text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db.models import F

from polaris.sql.erasure import rows_rewrite

ERASED = "[erased]"

# The JSON keys whose string values are a person's words or names. A key's whole value is scrubbed, so
# ``changes: {"title": {"old": …, "new": …}}`` loses both texts.
FREE_TEXT_KEYS = frozenset(
    {
        "title",
        "description",
        "reason",
        "blocked_reason",
        "staff_notes",
        "notes",
        "message",
        "first_name",
        "last_name",
        "full_name",
        "email",
        "username",
        "error",
        "last_error",
        "response_excerpt",
        # A task's checklist items and a plan's approval comments (in stored responses: workflow's rows
        # have their own erasers, and events carry neither).
        "text",
        "comment",
    }
)

Eraser = Callable[..., int]
_erasers: dict[str, Eraser] = {}


def eraser_register(name: str, func: Eraser) -> None:
    """Add ``func(*, client_id, dry_run) -> int`` under ``name`` (its count's key in ``ClientErased``)."""
    if name in _erasers and _erasers[name] is not func:
        raise ValueError(f"An eraser named {name!r} is already registered.")
    _erasers[name] = func


def erasers() -> dict[str, Eraser]:
    """Every registered eraser, in registration order."""
    return dict(_erasers)


def _scrub_all(value: Any) -> Any:
    if isinstance(value, str):
        return ERASED if value else value
    if isinstance(value, dict):
        return {key: _scrub_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_all(item) for item in value]
    return value


def scrub(value: Any, *, keys: frozenset[str] = FREE_TEXT_KEYS) -> Any:
    """``value`` (JSON) with every string under one of ``keys``, at any depth, replaced by ``ERASED``."""
    if isinstance(value, dict):
        return {
            key: _scrub_all(item) if key in keys else scrub(item, keys=keys) for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, keys=keys) for item in value]
    return value


def scrub_text(value: str) -> str:
    """A free-text column's erased value (an empty one stays empty)."""
    return ERASED if value else value


def names_client(value: Any, client_id: int) -> bool:
    """Does a JSON value name the client (``client``/``client_id`` equal to its id, at any depth)?"""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("client", "client_id") and (item == client_id or item == str(client_id)):
                return True
            if isinstance(item, dict) and key == "client" and item.get("id") == client_id:
                return True
            if names_client(item, client_id):
                return True
        return False
    if isinstance(value, list):
        return any(names_client(item, client_id) for item in value)
    return False


def text_digest(text: str) -> dict[str, Any]:
    """What an event says about a free text whose words it must not keep: its length and a keyed digest
    (HMAC-SHA256 with ``SECRET_KEY``, 16 hex digits: equal texts compare equal, nobody can test a guess
    without the key)."""
    key = str(settings.SECRET_KEY).encode()
    digest = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:16]
    return {"length": len(text), "digest": digest}


def rows_erase(
    queryset: Any,
    *,
    text_fields: tuple[str, ...] = (),
    json_fields: tuple[str, ...] = (),
    where: Callable[[dict[str, Any]], bool] | None = None,
    read_fields: tuple[str, ...] = (),
    dry_run: bool,
    batch: int = 2000,
) -> int:
    """Scrub ``text_fields`` (a non-empty value becomes ``ERASED``) and ``json_fields`` (``scrub``) of the
    rows of ``queryset`` (those ``where`` accepts, when given: it sees the row's columns and
    ``read_fields``), rewritten in place by batches of primary keys; returns how many rows change (would
    change, on a dry run)."""
    model = queryset.model
    pk_name = model._meta.pk.attname
    columns = (*text_fields, *json_fields)
    changed = 0
    rewritten: list[dict[str, Any]] = []
    # One read (chunked), rewrites flushed every ``batch`` rows.
    for row in queryset.order_by().values(pk_name, *columns, *read_fields).iterator(chunk_size=batch):
        if where is not None and not where(row):
            continue
        new = {name: scrub_text(row[name]) for name in text_fields}
        new.update({name: scrub(row[name]) for name in json_fields})
        if any(new[name] != row[name] for name in columns):
            rewritten.append({pk_name: row[pk_name], **new})
            changed += 1
        if len(rewritten) >= batch and not dry_run:
            rows_rewrite(model, columns, rewritten)
            rewritten = []
    if rewritten and not dry_run:
        rows_rewrite(model, columns, rewritten)
    return changed


def client_anonymise(*, client_id: int, dry_run: bool) -> int:
    """The client's account row: kept (tasks and plans ``PROTECT`` it), deactivated, its names and email
    gone, its username ``erased-<id>``, its password unusable. Returns 1 when it changes."""
    user = get_user_model()._base_manager.filter(pk=client_id)
    anonymous = {"username": f"erased-{client_id}", "first_name": "", "last_name": "", "email": ""}
    if not user.exclude(is_active=False, **anonymous).exists():
        return 0
    if not dry_run:
        # A queryset update skips User.save(): bump the token version here, so every token stops at once.
        user.update(
            is_active=False, password=make_password(None), token_version=F("token_version") + 1, **anonymous
        )
    return 1

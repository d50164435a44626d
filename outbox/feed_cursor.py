"""Opaque feed cursors: a position encrypted and authenticated with a key derived from ``SECRET_KEY``.

A plain position would tell any caller how many events the whole deployment has written (every tenant's
volume), and would let a caller forge one (jump ahead, skipping events for good). Signing alone stops the
forgery but not the reading (a signed value is base64 of the value), so the position is encrypted too:
``nonce (8 random bytes) || position XOR PRF(key, "pad" || nonce) || MAC(key, nonce || ciphertext)[:12]``,
base64url. The PRF and the MAC are HMAC-SHA256 under two keys derived from ``SECRET_KEY`` (Django's
``salted_hmac``), an encrypt-then-MAC construction from the standard library only. Cursors minted with a
key in ``SECRET_KEY_FALLBACKS`` stay valid during a key rotation. Two cursors for one position differ
(the nonce), so equal cursors reveal nothing either.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

from polaris.errors import ValidationFailed

_SALT = "outbox.feed_cursor"
_NONCE = 8
_TAG = 12
_LENGTH = _NONCE + 8 + _TAG
MAX_CURSOR_LENGTH = 64  # what the query string accepts (a cursor is 38 characters)


class InvalidCursor(ValidationFailed):
    """The ``after`` cursor was not minted by this deployment (tampered, truncated, or from elsewhere)."""

    error_code = "INVALID_CURSOR"


@functools.lru_cache(maxsize=8)
def _keys(secret: str) -> tuple[bytes, bytes]:
    pad = salted_hmac(_SALT + ".pad", b"", secret=secret, algorithm="sha256").digest()
    mac = salted_hmac(_SALT + ".mac", b"", secret=secret, algorithm="sha256").digest()
    return pad, mac


def _seal(position: int, nonce: bytes, secret: str) -> bytes:
    pad_key, mac_key = _keys(secret)
    pad = hmac.new(pad_key, nonce, hashlib.sha256).digest()[:8]
    body = bytes(a ^ b for a, b in zip(position.to_bytes(8, "big"), pad, strict=True))
    tag = hmac.new(mac_key, nonce + body, hashlib.sha256).digest()[:_TAG]
    return nonce + body + tag


def cursor_encode(position: int) -> str:
    """The opaque cursor for ``position`` (0 included: the start)."""
    sealed = _seal(position, secrets.token_bytes(_NONCE), str(settings.SECRET_KEY))
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def cursor_decode(cursor: str) -> int:
    """The position in ``cursor``; ``InvalidCursor`` unless this deployment minted it unchanged."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    # Canonical base64 only: the last character's spare bits would otherwise let two spellings of one
    # cursor both pass (a changed character must always be refused).
    if len(raw) == _LENGTH and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == cursor:
        nonce, body, tag = raw[:_NONCE], raw[_NONCE : _NONCE + 8], raw[_NONCE + 8 :]
        for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
            pad_key, mac_key = _keys(secret)
            if hmac.compare_digest(hmac.new(mac_key, nonce + body, hashlib.sha256).digest()[:_TAG], tag):
                pad = hmac.new(pad_key, nonce, hashlib.sha256).digest()[:8]
                return int.from_bytes(bytes(a ^ b for a, b in zip(body, pad, strict=True)), "big")
    raise InvalidCursor(
        "This cursor was not issued by this server (pass the `next` of a page unchanged).",
        details={"after": ["Invalid cursor."]},
    )

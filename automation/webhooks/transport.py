"""Webhook transport: the signature, the URL check and the SSRF guard, and one HTTP request.

``automation.webhooks.delivery`` builds the request and records its outcome; this module only sends:

- Standard Webhooks signing (https://www.standardwebhooks.com): headers ``webhook-id`` (the event id),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``, a space-separated list of
  ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per secret that signs (two during a
  rotation's grace period). Secrets are ``whsec_<base64 of the key bytes>``;
- SSRF guard: the host is resolved once and every address must be public (not loopback, private,
  link-local, multicast, reserved, unspecified or otherwise non-global) unless the host is in
  ``WEBHOOK_ALLOWED_HOSTS``. The request then goes to the *checked address* (``Host`` header and TLS
  SNI/certificate check keep the original name), so a second DNS answer cannot redirect it
  (DNS rebinding). Redirects are never followed: a 3xx is a permanent failure.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import secrets
import socket
import ssl
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings

USER_AGENT = "Polaris-Webhooks/1"


class WebhookRefused(Exception):
    """The target is not allowed (SSRF guard or a malformed URL); never retried."""


SECRET_PREFIX = "whsec_"  # noqa: S105 — the format's prefix, not a secret


def secret_generate() -> str:
    """A new signing secret: ``whsec_`` and 24 random bytes in base64 (the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for (the base64-decoded part after the prefix)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def webhook_sign(*, secret: str, msg_id: str, timestamp: str, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`` (what receivers recompute)."""
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(*, signing_secrets: list[str], msg_id: str, timestamp: str, body: str) -> dict[str, str]:
    """The request headers: content type, user agent and the three Standard Webhooks headers."""
    signatures = " ".join(
        webhook_sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
        for secret in signing_secrets
    )
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signatures,
    }


def url_check_syntax(url: str) -> str | None:
    """A problem with the URL's form, or ``None``. Addresses are checked at delivery time."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        return f"Not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "Only http and https URLs are supported."
    if not parts.hostname:
        return "The URL needs a host."
    if parts.username or parts.password:
        return "Credentials in the URL are not allowed; authenticate with the signature."
    return None


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    refused = (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )
    return not refused


def host_is_allow_listed(host: str) -> bool:
    return host.lower().rstrip(".") in {h.lower().rstrip(".") for h in settings.WEBHOOK_ALLOWED_HOSTS}


def target_resolve(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to) for ``url``, after the SSRF guard.

    Raises ``WebhookRefused`` for a refused target and ``OSError`` when the name does not resolve
    (retried: DNS failures are often transient).
    """
    problem = url_check_syntax(url)
    if problem:
        raise WebhookRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{host} did not resolve")
    if not host_is_allow_listed(host):
        blocked = [a for a in addresses if not address_is_public(a)]
        if blocked:
            raise WebhookRefused(
                f"Refused: {host} resolves to a non-public address ({', '.join(blocked)}); "
                "add the host to WEBHOOK_ALLOWED_HOSTS if this is intended."
            )
    return host, port, addresses[0]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs ~0.2 s, more than a
    delivery; httpx would build a new one for every client."""
    return ssl.create_default_context(cafile=certifi.where())


def webhook_post(url: str, *, address: str, host: str, headers: dict[str, str], body: str) -> httpx.Response:
    """POST ``body`` to the checked ``address`` (never resolved again); ``host`` keeps Host and TLS SNI."""
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    netloc = f"[{address}]" if ip.version == 6 else address
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls_context()
    ) as client:
        return client.post(
            target, content=body.encode(), headers={**headers, "Host": host_header}, extensions=extensions
        )

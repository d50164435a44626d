"""Webhook transport: the signature, the URL check and the SSRF guard, and one HTTP request.

``automation.webhooks.delivery`` builds the request and records its outcome; this module only sends:

- Standard Webhooks signing (https://www.standardwebhooks.com): headers ``webhook-id`` (the event id),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``, a space-separated list of
  ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per secret that signs (two during a
  rotation's grace period). Secrets are ``whsec_<base64 of the key bytes>``;
- SSRF guard: the host is resolved once and every address must be public (not loopback, private,
  link-local, multicast, reserved, unspecified or otherwise non-global) unless the host is in
  ``WEBHOOK_ALLOWED_HOSTS``. IPv6 forms that carry an IPv4 address (IPv4-mapped and -compatible, 6to4
  ``2002::/16``, Teredo ``2001::/32``, NAT64 ``64:ff9b::/96``) are judged by the IPv4 inside too
  (``http://[2002:7f00:1::1]/`` is 127.0.0.1: refused); the local-use NAT64 prefix ``64:ff9b:1::/48`` is
  refused. The port must be in ``WEBHOOK_ALLOWED_PORTS`` (empty: any). The request then goes to the
  *checked address* (``Host`` header and TLS SNI/certificate check keep the original name), so a second
  DNS answer cannot redirect it (DNS rebinding). Redirects are never followed: a 3xx is a permanent
  failure;
- one deadline for the whole attempt: connecting, TLS, sending and reading all share
  ``WEBHOOK_TIMEOUT_SECONDS`` (every socket operation waits at most what is left of it, so a receiver
  trickling bytes cannot stretch it), and at most ``RESPONSE_MAX_BYTES`` of the body are read (the
  rest is never received: the connection is closed).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx
from django.conf import settings

USER_AGENT = "Polaris-Webhooks/1"
RESPONSE_MAX_BYTES = 4096  # of a receiver's answer we read; an excerpt is all that is kept


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


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def host_problem(host: str) -> str | None:
    """What is wrong with a URL's host (an IP address or a DNS name of letters, digits and hyphens in
    dot-separated labels of 1-63 characters), or None. ``.bad_host_`` is refused."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return f"Not a valid host name: {host!r}."
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return f"Not a valid host name: {host!r}."
    return None


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def port_problem(host: str, port: int) -> str | None:
    """A refusal when ``port`` is not in ``WEBHOOK_ALLOWED_PORTS`` (``*`` or empty: any port;
    allow-listed hosts are exempt), else None."""
    listed = [str(p).strip() for p in settings.WEBHOOK_ALLOWED_PORTS]
    if not listed or "*" in listed or host_is_allow_listed(host):
        return None
    allowed = {int(p) for p in listed if p.isdigit()}
    if port in allowed:
        return None
    return f"Port {port} is not allowed; WEBHOOK_ALLOWED_PORTS: {', '.join(map(str, sorted(allowed)))}."


def url_check_syntax(url: str) -> str | None:
    """A problem with the URL's form or port, or ``None``. Addresses are checked at delivery time."""
    problem = _url_form_problem(url)
    if problem:
        return problem
    host = urlsplit(url).hostname or ""
    return port_problem(host, port_of(url))


def _url_form_problem(url: str) -> str | None:
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
    return host_problem(parts.hostname)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, never public
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped, 6to4, Teredo (server and client),
    NAT64 well-known prefix, IPv4-compatible; empty for other addresses."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in NAT64 or ip in IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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


def address_is_public(address: str) -> bool:
    """Whether ``address`` may be a webhook target: public itself and, for IPv6 forms that carry an
    IPv4 address, public inside (a mapped, 6to4 or NAT64 address is judged by the IPv4 it reaches)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL:
            return False
        inner = embedded_ipv4(ip)
        if not all(_is_public(v4) for v4 in inner):
            return False
        if inner and (ip.ipv4_mapped is not None or ip in NAT64):
            return True  # reaches exactly that IPv4 address, which is public
    return _is_public(ip)


def host_is_allow_listed(host: str) -> bool:
    return host.lower().rstrip(".") in {h.lower().rstrip(".") for h in settings.WEBHOOK_ALLOWED_HOSTS}


def target_resolve(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to) for ``url``, after the SSRF guard.

    Raises ``WebhookRefused`` for a refused target and ``OSError`` when the name does not resolve
    (retried: DNS failures are often transient).
    """
    problem = _url_form_problem(url)
    if problem:
        raise WebhookRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = port_of(url)
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
    problem = port_problem(host, port)
    if problem:
        raise WebhookRefused(problem)
    return host, port, addresses[0]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs ~0.2 s, more than a
    delivery; httpx would build a new one for every client."""
    return ssl.create_default_context(cafile=certifi.where())


class _Deadline:
    """One deadline for a whole attempt: each socket operation may wait at most what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def timeout(self, timeout: float | None) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout(f"the attempt's deadline of {self.seconds:g} s passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.deadline.timeout(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.deadline.timeout(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self.stream.start_tls(ssl_context, server_hostname, self.deadline.timeout(timeout))
        return _DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, every operation bounded by the attempt's deadline."""

    def __init__(self, deadline: _Deadline) -> None:
        self.backend, self.deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(
            host, port, self.deadline.timeout(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self.deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise httpcore.ConnectError("Unix sockets are not webhook targets.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class WebhookResponse:
    """What an attempt keeps of the receiver's answer: the status and the start of the body."""

    status_code: int
    text: str
    truncated: bool = False


def webhook_post(url: str, *, address: str, host: str, headers: dict[str, str], body: str) -> WebhookResponse:
    """POST ``body`` to the checked ``address`` (never resolved again); ``host`` keeps Host and TLS SNI.

    Within one deadline (``WEBHOOK_TIMEOUT_SECONDS``) for connect, TLS, send and read; reads at most
    ``RESPONSE_MAX_BYTES`` of the answer. Network trouble raises ``httpx.TransportError`` (a
    ``httpx.TimeoutException`` once the deadline passes)."""
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    netloc = f"[{address}]" if ip.version == 6 else address
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    seconds = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    deadline = _Deadline(seconds)
    extensions: dict[str, Any] = {"timeout": {name: seconds for name in ("connect", "read", "write", "pool")}}
    if parts.scheme == "https":
        extensions["sni_hostname"] = host
    content = body.encode()
    request_headers = [
        (name.encode(), value.encode()) for name, value in {**headers, "Host": host_header}.items()
    ]
    request_headers.append((b"Content-Length", str(len(content)).encode()))
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=_tls_context(), network_backend=_DeadlineBackend(deadline), retries=0
            ) as pool,
            pool.stream(
                "POST", target, headers=request_headers, content=content, extensions=extensions
            ) as answer,
        ):
            received = bytearray()
            truncated = False
            for chunk in answer.iter_stream():
                received += chunk[: RESPONSE_MAX_BYTES - len(received)]
                if len(received) >= RESPONSE_MAX_BYTES:
                    truncated = True  # stop here: the rest is never read, the connection is closed
                    break
            return WebhookResponse(answer.status, received.decode("utf-8", errors="replace"), truncated)
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise _as_httpx(exc) from exc
    except httpcore.UnsupportedProtocol as exc:
        raise WebhookRefused(f"Unsupported protocol: {exc}") from exc


def _as_httpx(exc: Exception) -> httpx.TransportError:
    """httpcore's error as httpx's class of the same name (what the delivery classifies)."""
    kind = getattr(httpx, type(exc).__name__, None)
    if not (isinstance(kind, type) and issubclass(kind, httpx.TransportError)):
        kind = httpx.TimeoutException if isinstance(exc, httpcore.TimeoutException) else httpx.TransportError
    return kind(str(exc) or type(exc).__name__)

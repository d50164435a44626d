"""One client identity, and forwarded headers believed only from the proxies named in ``TRUSTED_PROXIES``.

Django's ``SECURE_PROXY_SSL_HEADER`` trusts ``X-Forwarded-Proto`` from whoever sends it, so a client that
reaches the published port directly could claim HTTPS (secure cookies, no redirect, CSRF origin checks on
``https``). This middleware removes the ``X-Forwarded-*`` headers unless the peer (``REMOTE_ADDR``) is one
of the configured addresses or networks; gunicorn's ``forwarded_allow_ips`` follows the same list.

The client is the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (each proxy appends
the address it received the request from, nginx's default, so everything left of the first untrusted hop
is whatever the client chose to send), or the peer itself when the peer is not a trusted proxy. The
middleware writes that address into ``REMOTE_ADDR`` (the peer is kept in ``PEER_ADDR_KEY``), so Django,
the DRF throttles (``polaris.api.throttling``), django-axes (``AXES_CLIENT_IP_CALLABLE``) and the request
log all see one identity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
)
# The TCP peer as the server saw it, before REMOTE_ADDR became the client's address.
PEER_ADDR_KEY = "polaris.peer_addr"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")


def _parse(value: str | None) -> Address | None:
    value = (value or "").strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, entries: tuple[str, ...]) -> bool:
    return "*" in entries or any(address in network for network in trusted_networks(entries))


def peer_is_trusted(remote_addr: str | None, entries: tuple[str, ...]) -> bool:
    if "*" in entries:
        return True
    address = _parse(remote_addr)
    return address is not None and _is_trusted(address, entries)


def client_address(peer: str | None, forwarded_for: str | None, entries: tuple[str, ...]) -> str:
    """The client's address: the right-most ``X-Forwarded-For`` hop that is not a trusted proxy.

    ``peer`` is the TCP peer; its header is believed only when the peer is trusted. Walking from the
    right, each trusted hop hands over to the one before it; the first untrusted hop is the client. A hop
    that is not an address stops the walk at the last trusted one (a trusted proxy wrote garbage: the
    proxy is the best identity left). When every hop is trusted the left-most is the client."""
    peer_address = _parse(peer)
    if peer_address is None:
        return peer or ""
    if not forwarded_for or not _is_trusted(peer_address, entries):
        return str(peer_address)
    current = peer_address
    for hop in reversed(forwarded_for.split(",")):
        address = _parse(hop)
        if address is None:
            return str(current)
        current = address
        if not _is_trusted(address, entries):
            return str(address)
    return str(current)


def client_ip(request: HttpRequest) -> str:
    """The client identity of ``request`` (``AXES_CLIENT_IP_CALLABLE``, throttles, logs).

    Behind ``TrustedProxyMiddleware`` that is ``REMOTE_ADDR``; a request that did not pass it (a test's
    ``RequestFactory``, a management command) is resolved here by the same rule."""
    if PEER_ADDR_KEY in request.META:
        return request.META.get("REMOTE_ADDR") or ""
    entries = tuple(getattr(settings, "TRUSTED_PROXIES", ()))
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"), entries)


class TrustedProxyMiddleware:
    """Place first in ``MIDDLEWARE``, before anything reads the scheme, host or client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        entries = tuple(getattr(settings, "TRUSTED_PROXIES", ()))
        meta = request.META
        peer = meta.get("REMOTE_ADDR")
        if not peer_is_trusted(peer, entries):
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        meta[PEER_ADDR_KEY] = peer
        meta["REMOTE_ADDR"] = client_address(peer, meta.get("HTTP_X_FORWARDED_FOR"), entries)
        return self.get_response(request)

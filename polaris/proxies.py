"""Forwarded headers are believed only from the proxies named in ``TRUSTED_PROXIES``.

Django's ``SECURE_PROXY_SSL_HEADER`` trusts ``X-Forwarded-Proto`` from whoever sends it, so a client that
reaches the published port directly could claim HTTPS (secure cookies, no redirect, CSRF origin checks on
``https``). This middleware removes the ``X-Forwarded-*`` headers unless the peer (``REMOTE_ADDR``) is one
of the configured addresses or networks; gunicorn's ``forwarded_allow_ips`` follows the same list.
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

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")


def peer_is_trusted(remote_addr: str | None, entries: tuple[str, ...]) -> bool:
    if "*" in entries:
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in trusted_networks(entries))


class TrustedProxyMiddleware:
    """Place first in ``MIDDLEWARE``, before anything reads the scheme, host or client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        entries = tuple(getattr(settings, "TRUSTED_PROXIES", ()))
        if not peer_is_trusted(request.META.get("REMOTE_ADDR"), entries):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)

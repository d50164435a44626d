"""One client identity: the right-most X-Forwarded-For hop that is not a trusted proxy, for Django,
the throttles and the request log alike (polaris.proxies)."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient

from polaris.api import throttling
from polaris.proxies import PEER_ADDR_KEY, TrustedProxyMiddleware, client_address
from tests.support.api import assert_envelope

PROXY = "10.0.0.2"
TRUSTED = ("10.0.0.0/24", "127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.7", None, "203.0.113.7"),  # no proxy
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),  # an untrusted peer's header is ignored
        (PROXY, "203.0.113.7", "203.0.113.7"),  # nginx appended the client
        (PROXY, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own claim is left of it
        (PROXY, "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two trusted hops
        (PROXY, "10.0.0.5, 10.0.0.9", "10.0.0.5"),  # all trusted: the left-most
        (PROXY, "not-an-ip, 10.0.0.9", "10.0.0.9"),  # garbage from a trusted hop: the last trusted one
        (PROXY, " 203.0.113.7:5123 ", "203.0.113.7"),  # a port is not part of the identity
        (PROXY, "[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:10.0.0.2", "203.0.113.7", "203.0.113.7"),  # an IPv4-mapped peer is the IPv4 proxy
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(peer, forwarded_for, client):
    assert client_address(peer, forwarded_for, TRUSTED) == client


@pytest.mark.django_db
def test_five_requests_through_one_appending_proxy_land_in_one_bucket(settings):
    settings.TRUSTED_PROXIES = list(TRUSTED)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "4/minute", "user": "100/minute"},
    }
    api = APIClient(REMOTE_ADDR=PROXY)
    answers = []
    for attempt in range(5):
        # The client forges a different X-Forwarded-For each time; the proxy appends the real address.
        forwarded = f"198.51.100.{attempt}, 203.0.113.7"
        answers.append(api.post("/api/auth/logout", {"refresh": "x"}, HTTP_X_FORWARDED_FOR=forwarded))
    assert [r.status_code for r in answers[:4]] == [400] * 4
    assert_envelope(answers[4], 429, "THROTTLED")
    keys = [key.decode() for key in throttling._client().keys(f"{throttling.KEY_PREFIX}:*")]
    assert len(keys) == 1, keys
    assert "203.0.113.7" in keys[0]


@pytest.mark.django_db
def test_an_untrusted_peer_cannot_pick_its_bucket(settings):
    settings.TRUSTED_PROXIES = list(TRUSTED)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "100/minute"},
    }
    api = APIClient(REMOTE_ADDR="203.0.113.9")
    codes = [
        api.post("/api/auth/logout", {"refresh": "x"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(3)
    ]
    assert codes == [400, 400, 429]


@pytest.mark.django_db
def test_django_and_the_request_log_see_the_client(settings, caplog):
    settings.TRUSTED_PROXIES = list(TRUSTED)
    seen = {}

    def view(request):
        seen["remote_addr"] = request.META["REMOTE_ADDR"]
        return HttpResponse("ok")

    request = RequestFactory().get("/x", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    TrustedProxyMiddleware(view)(request)
    assert seen["remote_addr"] == "203.0.113.7"
    assert request.META[PEER_ADDR_KEY] == PROXY

    caplog.set_level("INFO", logger="polaris.request")
    APIClient(REMOTE_ADDR=PROXY).get("/api/auth/me", HTTP_X_FORWARDED_FOR="203.0.113.7")
    logged = [r.msg for r in caplog.records if r.name == "polaris.request" and isinstance(r.msg, dict)]
    assert [line["client"] for line in logged if line.get("event") == "request.finished"] == ["203.0.113.7"]

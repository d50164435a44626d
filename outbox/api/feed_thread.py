"""The event feed's sync pieces on the async tier (``outbox.api.feed_async`` runs them in its thread pool):
DRF's authentication, permissions, throttles and error envelope around the sync view's own code — the
query string, the scope, the cursor, the first read, a woken waiter's read."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from outbox.feed import FeedPage
from polaris.api.authentication import JWTAuthentication

from .feed import EventFeedView, FeedRequest, feed_request_parse, feed_response


@dataclass
class Begun:
    """The first half of a request: an answer already, or what to wait for and for whom."""

    response: HttpResponse | None = None
    query: FeedRequest | None = None
    user_id: Any = None
    page: FeedPage | None = None  # the first read's (empty) page
    slot: tuple[str | None, int] | None = None  # the user's wait slot, when already taken
    learnt: FeedRequest | None = None  # a valid request from a JWT (``Repolls.learn``)


def _attach_session_user(request: HttpRequest) -> None:
    """What SessionMiddleware and AuthenticationMiddleware give a request (for DRF's session auth)."""
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    request.user = SimpleLazyObject(lambda: get_user(request))  # type: ignore[assignment]


def _view_run(request: HttpRequest, body: Any) -> HttpResponse:
    """Run ``body(view, drf_request)`` as DRF's dispatch would: the view's checks first, DRF's exception
    handler (the error envelope) for whatever it raises, the response finalised and rendered."""
    view = EventFeedView()
    view.setup(request)
    view.headers = view.default_response_headers
    drf_request = view.initialize_request(request)
    view.request = drf_request
    try:
        response = body(view, drf_request)
    except Exception as exc:
        response = view.handle_exception(exc)
    response = view.finalize_response(drf_request, response)
    if hasattr(response, "render"):
        response.render()
    return response


def feed_begin(request: HttpRequest, *, listening: bool, examined_to: int | None = None) -> Begun:
    """Authentication, throttles, the query string, the scope, the cursor and the first read. A request
    that may wait skips the position round while this process's listener is up: the broadcaster runs one
    for every commit before it wakes anyone, so nothing committed stays unpositioned for a waiter; rounds
    serialise on one row. A waiter whose cursor is where the fan-out has examined (``examined_to``: one
    re-polling with the ``next`` it was given) skips the read: nothing lies between (``_wait_and_read``
    reads if the fan-out moved on meanwhile), and that cursor is not ahead of the feed."""
    _attach_session_user(request)
    begun = Begun()

    def body(view: EventFeedView, drf_request: Any) -> HttpResponse:
        view.initial(drf_request)  # authentication, permissions, throttles
        query = feed_request_parse(drf_request)
        if isinstance(drf_request.successful_authenticator, JWTAuthentication):
            begun.learnt = query
        if query.wait > 0 and listening and examined_to is not None and query.after == examined_to:
            page = FeedPage(raw=[], next=query.after, head=examined_to)
        else:
            page = query.read(sequence=query.wait <= 0 or not listening)
        if page.raw or page.has_more or query.wait <= 0:  # has_more: a sparse filter, the client goes on
            return feed_response(page, viewer=query.viewer)
        begun.query, begun.user_id, begun.page = query, drf_request.user.pk, page
        return HttpResponse(status=204)  # a placeholder: the caller waits, then calls feed_finish

    response = _view_run(request, body)
    if begun.query is None:
        begun.response = response
    return begun


def feed_finish(request: HttpRequest, query: FeedRequest) -> tuple[HttpResponse, FeedPage | None]:
    """A waiter's read once subscribed: no position round of its own (the broadcaster runs one for each
    commit before it wakes anyone); the response, and the page when there is one."""
    pages: list[FeedPage] = []

    def body(view: EventFeedView, drf_request: Any) -> HttpResponse:
        pages.append(query.read(sequence=False))
        return feed_response(pages[0], viewer=query.viewer)

    return _view_run(request, body), (pages[0] if pages else None)

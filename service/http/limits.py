"""The request limits over HTTP: the per-caller rate (a guard), the request timeout and the shedding of
decide calls when the process has no room for one more decision (middlewares).

The rate applies to every route except the open probes and the API description (/health, /ready,
/schema): those are what load balancers and tools call, and they do no work worth limiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.domain.limits import RateLimiter
from service.errors import OpsgateError, Overloaded, RateLimited, RequestTimeout, Unauthorized
from service.http.common import caller, client_host
from service.http.envelope import item_error
from service.http.guard import auth_of, authenticated
from service.http.guard import guard as authenticate
from service.usecases.admission import Admission

UNLIMITED_PREFIXES = ("/health", "/ready", "/schema")


def rate_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The bucket a request draws from: the API key's name; with keys configured, a request without
    one (the login page, the open probes) is keyed by its client address, so one client cannot
    empty everybody's bucket; in open development mode, the caller (header or address)."""
    key = authenticated(connection)
    if key is not None:
        return key.name
    auth = auth_of(connection)
    if auth is not None and not auth.open:
        return f"anonymous@{client_host(connection)}"
    return caller(connection)


def rate_guard(limiter: RateLimiter) -> Any:
    """A Litestar guard taking one token of the caller's bucket; 429 rate_limited when it is empty.

    Listed after the authentication guard, so the caller is the API key's name once keys exist.  A
    coroutine, as every guard here: Litestar runs a plain function guard on its thread pool."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not limiter.enabled or connection.scope["path"].startswith(UNLIMITED_PREFIXES):
            return
        _check(limiter, rate_key(connection))

    return guard


def _check(limiter: RateLimiter, who: str) -> None:
    wait = limiter.take(who)
    if wait:
        raise RateLimited(
            f"rate limit of {limiter.rate:g} requests a second (burst {limiter.burst:g}) exceeded by {who!r}; "
            f"retry after {wait} s",
            wait,
        )


def limited_authentication(limiter: RateLimiter) -> Any:
    """The authentication guard, with each refused request (no key, an unknown key: 401) drawn from its
    client address's bucket, the one the login page draws from: a client trying keys is limited as
    any other, 429 once its address's bucket is empty."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        try:
            await authenticate(connection, handler)
        except Unauthorized:
            if limiter.enabled:
                _check(limiter, f"anonymous@{client_host(connection)}")
            raise

    return guard


def guards(limiter: RateLimiter) -> list[Any]:
    """Who may call, then how often: the authentication guard (limited) and the rate guard, on one limiter."""
    return [limited_authentication(limiter), rate_guard(limiter)]


def request_timeout(seconds: float) -> Any:
    """A middleware answering 503 request_timeout when a request runs longer than ``seconds``.

    The work is cancelled where it stands.  A decision whose log append was already queued is
    still committed whole (one transaction, chained), though the caller got 503 and no
    decision id: a timed-out decision is unacknowledged, never half-logged."""

    def middleware(app: ASGIApp) -> ASGIApp:
        if seconds <= 0:
            return app

        async def within(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = False

            async def tracking(message: Message) -> None:
                nonlocal started
                started = started or message["type"] == "http.response.start"
                await send(message)

            try:
                async with asyncio.timeout(seconds):
                    await app(scope, receive, tracking)
            except TimeoutError:
                if started:  # the answer is already on its way: let it finish as it can
                    raise
                raise RequestTimeout(f"the request took longer than {seconds:g} s and was abandoned") from None

        return within

    return middleware


def _decides(scope: Scope) -> bool:
    if scope["type"] != ScopeType.HTTP or scope["method"] != "POST":
        return False
    path = scope["path"]
    return path in ("/decide", "/run") or path.startswith("/decide/")


def shed_when_full(admission: Admission) -> Any:
    """A middleware answering a decide call 503 overloaded at once when not even one more decision
    could be admitted or wait (``Admission.check``): before its guards, its body and its handler, so
    a refusal costs the event loop a fraction of a decision, even from callers that ask again at once.
    The handlers admit the calls that pass (service/http/decide.py)."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def shedding(scope: Scope, receive: Receive, send: Send) -> None:
            if _decides(scope):
                try:
                    admission.check()
                except Overloaded as error:
                    await _answer(send, error)
                    return
            await app(scope, receive, send)

        return shedding

    return middleware


_ENCODE = msgspec.json.Encoder().encode


async def _answer(send: Send, error: OpsgateError) -> None:
    """``error``'s JSON envelope and headers, as the registered error handler answers it."""
    body = _ENCODE(item_error(error))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers().items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})

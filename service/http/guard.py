"""The guard every route passes: a Bearer API key, or a reviewer page's session cookie, holding a role.

A route says who may call it with ``opt={"roles": (...)}``; "admin" may call every route.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from service.auth.keys import ROLES, ApiKey
from service.auth.sessions import SESSION_COOKIE, Auth, Session
from service.domain.limits import LogThrottle
from service.errors import Forbidden, LoginRequired, OpsgateError, Unauthorized

log = logging.getLogger("opsgate.auth")

OPEN_MODE_WARNING = """
************************************************************************
*  opsgate runs in OPEN DEVELOPMENT MODE: no API key is configured,     *
*  so every endpoint answers anyone, with no authentication at all.     *
*  Configure keys (OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS, see       *
*  `opsgate keys new`) and start with --require-auth in production.     *
************************************************************************"""


def auth_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Auth | None:
    auth: Auth | None = getattr(connection.app.state, "auth", None)
    return auth


def authenticated(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key the guard let through, if any."""
    key = connection.scope.get("user")
    return key if isinstance(key, ApiKey) else None


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    """The session the guard let through (a reviewer page reached with the cookie), if any."""
    session = connection.scope.get("auth")
    return session if isinstance(session, Session) else None


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


REFUSAL_LOG_INTERVAL_S = 60.0  # one 401 line per kind (no key, unknown key) and client address in this long


def refusal_log() -> LogThrottle:
    """The throttle of the 401 lines (the app's state holds one): a client sending a flood of bad or
    missing keys must not flood the log as well.  A 403 needs a known key, limited by its own rate."""
    return LogThrottle(REFUSAL_LOG_INTERVAL_S)


def _refuse(connection: ASGIConnection[Any, Any, Any, Any], error: OpsgateError, who: str) -> OpsgateError:
    address = connection.client.host if connection.client else "unknown"
    throttle: LogThrottle | None = getattr(connection.app.state, "refusals", None)
    held = throttle.take(f"{who} {address}") if throttle is not None and error.status == 401 else 0
    if held is not None:
        method = connection.scope.get("method", "")
        more = f" ({held} more since the last line of these)" if held else ""
        log.warning("%d %s from %s: %s %s%s", error.status, who, address, method, connection.url.path, more)
    return error


def _by_key(auth: Auth, connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key of the Bearer token, None without one; an unknown token is refused."""
    token = _bearer(connection)
    if token is None:
        return None
    key = auth.authenticate(token)
    if key is None:
        raise _refuse(connection, Unauthorized("unknown API key"), "unknown key")
    return key


async def _by_session(auth: Auth, connection: ASGIConnection[Any, Any, Any, Any], session: bool) -> ApiKey:
    found = await auth.signed_in(connection.cookies.get(SESSION_COOKIE)) if session else None
    if found is not None:
        connection.scope["auth"] = found
        return found.key
    if session:
        raise _refuse(connection, LoginRequired("sign in with an API key"), "no key")
    raise _refuse(connection, Unauthorized("missing API key: send Authorization: Bearer <key>"), "no key")


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Let through a route without ``opt["roles"]``, anything in open mode, or a key holding one of the roles.

    Routes with ``opt["session"]`` (the reviewer pages) also take the session cookie; a form posted
    with it must carry the session's CSRF token.
    """
    roles: tuple[str, ...] = handler.opt.get("roles") or ()
    auth = auth_of(connection)
    if not roles or auth is None or auth.open:
        return
    # a Bearer key is checked first and alone: only a cookie's session may ask the store
    key = _by_key(auth, connection) or await _by_session(auth, connection, bool(handler.opt.get("session")))
    if not key.may(roles):
        needed = " or ".join((*roles, "admin"))
        error = Forbidden(f"API key {key.name!r} may not call this endpoint: it needs the role {needed}")
        raise _refuse(connection, error, f"key {key.name!r}")
    connection.scope["user"] = key
    found = session_of(connection)
    if found is not None and isinstance(connection, Request) and connection.method == "POST":
        form = await connection.form()
        auth.check_token(auth.csrf_token(found), form.get("csrf_token"))


def roles(*names: str) -> dict[str, Any]:
    """A route's ``opt``: the roles that may call it ("admin" always may)."""
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}")
    return {"roles": names}

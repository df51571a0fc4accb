"""Helpers every HTTP module shares: JSON responses, who is calling and the trace they call from."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State

from service.http.guard import auth_of, authenticated
from service.ports.tracing import TraceParent
from service.usecases.admission import Admission
from service.usecases.fleet import Fleet
from service.usecases.serving import Runtime

_JSON = msgspec.json.Encoder()
CALLER_HEADER = "X-Opsgate-Caller"  # open development mode only


def json_response(content: Any, status: int = 200) -> Response[bytes]:
    return Response(_JSON.encode(content), status_code=status, media_type=MediaType.JSON)


def client_host(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


def caller(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's identity as logged: the API key's name.

    In open development mode (no key configured) nobody is authenticated: the caller is the
    ``X-Opsgate-Caller`` header when given (to try out approvals by several people), else the
    client's address.  With keys, a route open to all (no roles) sees "anonymous".
    """
    key = authenticated(request)
    if key is not None:
        return key.name
    auth = auth_of(request)
    if auth is not None and not auth.open:
        return "anonymous"
    claimed = request.headers.get(CALLER_HEADER, "").strip()
    if claimed:
        return claimed[:128]
    return client_host(request)


def trace_parent(request: ASGIConnection[Any, Any, Any, Any]) -> TraceParent | None:
    """The caller's W3C trace context (``traceparent``, ``tracestate``), which the decision's span continues."""
    header = request.headers.get("traceparent")
    return TraceParent(header[:256], request.headers.get("tracestate", "")[:512]) if header else None


def runtime(state: State) -> Runtime:
    value: Runtime = state.runtime
    return value


def fleet(state: State) -> Fleet:
    """The version changes that reach every worker of ``serve --workers N`` (with one process, its own)."""
    value: Fleet = state.fleet
    return value


def admission(state: State) -> Admission:
    """This process's bound on the decisions in flight (the /decide routes take room in it)."""
    value: Admission = state.admission
    return value


async def actions(state: State) -> dict[str, int] | None:
    """The executors' outbox by state (None without executors), for the dashboards."""
    current = runtime(state)
    return None if current.settings.executors is None else await current.log.outbox.counts()

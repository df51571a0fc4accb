"""Helpers every HTTP module shares: JSON responses and who is calling."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.datastructures import State

from service.runtime import Runtime

_JSON = msgspec.json.Encoder()


def json_response(content: Any, status: int = 200) -> Response[bytes]:
    return Response(_JSON.encode(content), status_code=status, media_type=MediaType.JSON)


def caller(request: Request[Any, Any, Any]) -> str:
    """The caller's identity as logged: its address until API keys exist."""
    return request.client.host if request.client else "unknown"


def runtime(state: State) -> Runtime:
    value: Runtime = state.runtime
    return value

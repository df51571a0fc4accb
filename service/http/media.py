"""Every JSON endpoint takes JSON only: a POST without ``Content-Type: application/json`` is refused.

A web page on any other site can post a form (``text/plain``, ``application/x-www-form-urlencoded``,
``multipart/form-data``) or send a bodiless ``fetch`` without a CORS preflight; only
``application/json`` needs one.  So requiring it keeps such posts from driving the API, in open
development mode too, where no key stands in their way.  The reviewer pages (/ui) post forms and
carry a CSRF token instead.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import UnsupportedMediaType

FORM_PREFIX = "/ui"
JSON_MEDIA_TYPE = "application/json"
_WITH_BODY = ("POST", "PUT", "PATCH", "DELETE")


def takes_json(method: str, path: str) -> bool:
    """Whether a route answers only requests that say they send JSON (the OpenAPI document lists 415 for it)."""
    return method in _WITH_BODY and not (path == FORM_PREFIX or path.startswith(FORM_PREFIX + "/"))


async def json_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: 415 unsupported_media_type for a JSON route posted without ``Content-Type: application/json``
    (parameters such as ``charset`` may follow it), even without a body.  A coroutine: Litestar runs a plain
    function guard on its thread pool."""
    method, path = str(connection.scope.get("method", "")), connection.scope["path"]
    if not takes_json(method, path):
        return
    sent = connection.headers.get("content-type", "")
    if sent.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"{method} {path} takes {JSON_MEDIA_TYPE}, "
            f"not {sent or 'a request without Content-Type'}: send Content-Type: {JSON_MEDIA_TYPE}"
        )

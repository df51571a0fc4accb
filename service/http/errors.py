"""The error envelope: every failure answered as ``{"status": "error", "error": {code, message, details}}``.

The one place opsgate's error tree and Litestar's own errors become HTTP responses.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from service.errors import OpsgateError
from service.http.common import json_response as _json
from service.http.envelope import error_body as _error_body
from service.http.envelope import item_error

log = logging.getLogger("opsgate.http")


def opsgate_error(_: Request[Any, Any, Any], error: OpsgateError) -> Response[bytes]:
    response = _json(item_error(error), error.status)
    response.headers.update(error.headers())
    return response


# Litestar's own errors (routing, body size, parameter validation) under the same stable codes; any other
# status the framework answers is FRAMEWORK_FALLBACK, and an exception nothing expected is UNEXPECTED
# (docs/http-api.md's error table lists them all: tests/unit/test_docs.py)
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "rate_limited", 503: "service_unavailable",
}  # fmt: skip
FRAMEWORK_FALLBACK = "http_error"
UNEXPECTED = "internal_error"


def http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    code = HTTP_CODES.get(error.status_code, FRAMEWORK_FALLBACK)
    details = [_litestar_detail(extra) for extra in error.extra] if isinstance(error.extra, list) else []
    response = _json(_error_body(code, str(error.detail), details), error.status_code)
    response.headers.update(error.headers or {})  # e.g. Allow on a 405
    return response


def _litestar_detail(extra: Any) -> dict[str, str]:
    """A parameter validation problem (``{"key", "message", "source"}``) as a detail's path and reason."""
    if isinstance(extra, dict):
        return {"path": str(extra.get("key", "$")), "reason": str(extra.get("message", ""))}
    return {"path": "$", "reason": str(extra)}


def unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(_error_body(UNEXPECTED, "internal error; see the service log"), 500)

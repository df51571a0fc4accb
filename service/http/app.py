"""The HTTP surface: decode, call the decision service, encode.  Nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from service import auth, bootstrap
from service.auth import roles
from service.domain.limits import RateLimiter
from service.errors import BadRequest, OpsgateError, Problem
from service.http import admin as http_admin
from service.http import metrics as http_metrics
from service.http import openapi as http_openapi
from service.http import operations as http_operations
from service.http import review as http_review
from service.http import ui as http_ui
from service.http.common import caller, runtime
from service.http.common import json_response as _json
from service.http.limits import rate_guard, request_timeout
from service.settings import Settings
from service.usecases.approvals import sweeping
from service.usecases.watch import watching

log = logging.getLogger("opsgate.http")


async def _decide(request: Request[Any, Any, Any], state: State, ruleset: str) -> Response[bytes]:
    explain = request.query_params.get("explain")
    if explain not in (None, "full"):
        reason = "the only value is 'full' (why each rule that did not fire did not)"
        raise BadRequest(f"invalid query parameter explain: {reason}", [Problem(reason, path="explain")])
    body = await request.body()
    current = runtime(state)
    async with current.use() as served:
        response = await served.service.decide(ruleset, body, caller(request), explain_full=explain == "full")
    current.offer_shadow([response])
    return _json(response)


@post("/decide", summary="Decide with the default ruleset (ops)", status_code=200, opt=roles("decide"))
async def decide_default(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _decide(request, state, state.runtime.settings.default_ruleset)


@post("/decide/{ruleset:str}", summary="Decide with the named ruleset", status_code=200, opt=roles("decide"))
async def decide_named(request: Request[Any, Any, Any], state: State, ruleset: str) -> Response[bytes]:
    return await _decide(request, state, ruleset)


async def _decide_batch(request: Request[Any, Any, Any], state: State, ruleset: str) -> Response[bytes]:
    body = await request.body()
    current = runtime(state)
    async with current.use() as served:  # one version for the whole batch
        results = await served.service.decide_batch(ruleset, body, caller(request))
    decided = [r for r in results if not isinstance(r, OpsgateError)]
    current.offer_shadow(decided)
    items = [_item_error(r) if isinstance(r, OpsgateError) else r for r in results]
    counts = {"count": len(results), "decided": len(decided), "errors": len(results) - len(decided)}
    return _json({"status": "success", **counts, "results": items})


@post(
    "/decide/batch",
    summary="Decide up to 1,000 items of the default ruleset in one call",
    status_code=200,
    opt=roles("decide"),
)
async def decide_batch_default(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _decide_batch(request, state, state.runtime.settings.default_ruleset)


@post(
    "/decide/{ruleset:str}/batch",
    summary="Decide up to 1,000 items of the named ruleset",
    status_code=200,
    opt=roles("decide"),
)
async def decide_batch_named(request: Request[Any, Any, Any], state: State, ruleset: str) -> Response[bytes]:
    return await _decide_batch(request, state, ruleset)


@post("/run", summary="Alias of POST /decide/ops", status_code=200, opt=roles("decide"))
async def run_ops(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _decide(request, state, "ops")


@get("/health", summary="Liveness")
async def health() -> Response[bytes]:
    return _json({"status": "ok"})


@get("/ready", summary="Readiness: OPA answering and rules loaded")
async def ready(state: State) -> Response[bytes]:
    current = runtime(state)
    opa = current.guardrails.status()
    body = {
        "ready": opa["up"] and bool(current.catalog.rulesets),
        "opa": opa,
        "decision_log": {"store": current.log.description, "writer": current.log.writer},
        "version": current.catalog.version,
        "rulesets": current.catalog.ruleset_versions,
        "auth": state.auth.describe(),
    }
    return _json(body, 200 if body["ready"] else 503)


def _error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message, "details": details or []}}


def _problem(problem: Problem) -> dict[str, Any]:
    detail: dict[str, Any] = {"path": problem.path, "reason": problem.reason}
    if problem.file:  # a ruleset or policy problem: where, as `opsgate check` prints it
        detail.update(file=problem.file, line=problem.line, column=problem.column,
                      severity=problem.severity, message=str(problem))  # fmt: skip
    return detail


def _opsgate_error(_: Request[Any, Any, Any], error: OpsgateError) -> Response[bytes]:
    response = _json(_item_error(error), error.status)
    response.headers.update(error.headers())
    return response


def _item_error(error: OpsgateError) -> dict[str, Any]:
    """The body a single request failing with ``error`` gets; a batch item's error entry too."""
    return _error_body(error.code, error.message, [_problem(p) for p in error.problems])


# Litestar's own errors (routing, body size, parameter validation) under the same stable codes
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "rate_limited", 503: "service_unavailable",
}  # fmt: skip


def _http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    code = _HTTP_CODES.get(error.status_code, "http_error")
    details = [_litestar_detail(extra) for extra in error.extra] if isinstance(error.extra, list) else []
    response = _json(_error_body(code, str(error.detail), details), error.status_code)
    response.headers.update(error.headers or {})  # e.g. Allow on a 405
    return response


def _litestar_detail(extra: Any) -> dict[str, str]:
    """A parameter validation problem (``{"key", "message", "source"}``) as a detail's path and reason."""
    if isinstance(extra, dict):
        return {"path": str(extra.get("key", "$")), "reason": str(extra.get("message", ""))}
    return {"path": "$", "reason": str(extra)}


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(_error_body("internal_error", "internal error; see the service log"), 500)


def create_app(settings: Settings) -> Litestar:
    """The Litestar app for ``settings``; OPA and the log start with it and stop with it."""
    keys = auth.from_settings(settings)  # a bad key configuration stops the start here
    if keys.open:
        log.warning(auth.OPEN_MODE_WARNING)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        started = await bootstrap.start(settings, with_shadow=True)
        app.state.runtime, app.state.metrics = started.runtime, started.metrics
        keys.revocations.attach(started.log)  # signed-out sessions: shared by the workers, kept across starts
        try:
            async with watching(started.runtime), sweeping(started.runtime.approvals, settings.approval_sweep_s):
                yield
        finally:
            await started.close()

    handlers: list[ControllerRouterHandler] = [
        decide_default,
        decide_batch_default,
        decide_named,
        decide_batch_named,
        run_ops,
        health,
        ready,
        *http_review.ROUTES,
        *http_operations.ROUTES,
        *http_admin.ROUTES,
        *http_ui.ROUTES,
        *http_metrics.ROUTES,
    ]
    http_openapi.document(handlers)
    return Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        exception_handlers={OpsgateError: _opsgate_error, HTTPException: _http_error, Exception: _unexpected},
        request_max_body_size=settings.max_body_bytes,
        state=State({"auth": keys}),
        guards=[auth.guard, rate_guard(RateLimiter(settings.rate_limit, settings.rate_limit_burst or None))],
        middleware=[request_timeout(settings.request_timeout_s)],
        openapi_config=OpenAPIConfig(title="opsgate", version="0.1.0", path="/schema"),
        template_config=http_ui.TEMPLATES,
        debug=False,
    )

"""The HTTP app: the routes of every module, the guards, the error handlers, and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from service import bootstrap, heap
from service.auth.sessions import from_settings
from service.domain.limits import RateLimiter
from service.errors import OpsgateError
from service.http import admin as http_admin
from service.http import decide as http_decide
from service.http import evaluate as http_evaluate
from service.http import guard
from service.http import metrics as http_metrics
from service.http import openapi as http_openapi
from service.http import operations as http_operations
from service.http import reference as http_reference
from service.http import review as http_review
from service.http import ui as http_ui
from service.http.common import fleet, runtime
from service.http.common import json_response as _json
from service.http.errors import http_error, opsgate_error, unexpected
from service.http.limits import guards, request_timeout, shed_when_full
from service.http.media import json_only
from service.ports.log import Log
from service.settings import Settings
from service.usecases.admission import Admission
from service.usecases.approvals import sweeping
from service.usecases.export import exporting
from service.usecases.fleet import Fleet
from service.usecases.watch import watching

log = logging.getLogger("opsgate.http")


@get("/health", summary="Liveness")
async def health() -> Response[bytes]:
    return _json({"status": "ok"})


@get("/ready", summary="Readiness: OPA answering, rules loaded and the decision log committing")
async def ready(state: State) -> Response[bytes]:
    current = runtime(state)
    opa = current.guardrails.status()
    log_health = current.log.health()  # not ready while the log cannot commit: every decision would answer 503
    body = {
        "ready": opa["up"] and bool(current.catalog.rulesets) and log_health.ok,
        "opa": opa,
        "decision_log": {
            "store": current.log.description,
            "writer": current.log.writer,
            "ok": log_health.ok,
            "cause": log_health.cause,
            "error": log_health.error,
        },  # fmt: skip
        "export": await _export(state),  # lag is reported, never a reason to refuse decisions
        "version": current.catalog.version,
        "rulesets": current.catalog.ruleset_versions,
        "workers": fleet(state).workers(),  # with serve --workers N, the version each worker serves
        "auth": state.auth.describe(),
    }
    return _json(body, 200 if body["ready"] else 503)


async def _export(state: State) -> dict[str, object]:
    exporter = state.exporter
    if exporter is None:
        return {}
    return {name: msgspec.to_builtins(status) for name, status in (await exporter.status()).items()}


def _routes() -> list[ControllerRouterHandler]:
    """Every route, in the order the app registers them, with its OpenAPI description."""
    handlers: list[ControllerRouterHandler] = [
        *http_decide.ROUTES,
        *http_evaluate.ROUTES,
        health,
        ready,
        *http_review.ROUTES,
        *http_operations.ROUTES,
        *http_admin.ROUTES,
        *http_ui.ROUTES,
        *http_metrics.ROUTES,
    ]
    http_openapi.document(handlers)
    return handlers


def _openapi(settings: Settings) -> OpenAPIConfig:
    pages = http_reference.plugins(settings.default_ruleset)
    return OpenAPIConfig(title="opsgate", version="0.1.0", path="/schema", render_plugins=pages)


def _check_configs(settings: Settings) -> None:
    bootstrap.exporter(settings, None)
    bootstrap.deliverer(settings, None)


def create_app(settings: Settings, *, log_factory: Callable[[Settings], Log] | None = None) -> Litestar:
    """The Litestar app for ``settings``; OPA and the log start with it and stop with it.  ``log_factory``
    opens the decision log instead of the one ``settings`` name (the benchmark's log-off run)."""
    keys = from_settings(settings)  # a bad key configuration stops the start here
    _check_configs(settings)  # and so does a bad export or executors config (before any worker forks)
    admission = Admission(settings.max_in_flight, settings.admission_queue_ms / 1000)  # this process's own
    if keys.open:
        log.warning(guard.OPEN_MODE_WARNING)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        started = await bootstrap.start(settings, with_shadow=True, log_factory=log_factory)
        app.state.runtime, app.state.metrics, app.state.proofs = started.runtime, started.metrics, started.proofs
        app.state.exporter, app.state.fleet = started.exporter, Fleet(started.runtime)
        started.metrics.watch_admission(admission.stats)
        heap.settle(settings.gc_young)  # what the start made lives as long as the process
        keys.revocations.attach(started.log.sessions)  # signed-out sessions: shared by the workers, kept across starts
        try:
            async with (
                app.state.fleet.running(),
                watching(app.state.fleet),
                sweeping(started.runtime.approvals, settings.approval_sweep_s),
                exporting(started.exporter),
            ):
                yield
        finally:
            await started.close()

    return Litestar(
        route_handlers=_routes(),
        lifespan=[lifespan],
        exception_handlers={OpsgateError: opsgate_error, HTTPException: http_error, Exception: unexpected},
        request_max_body_size=settings.max_body_bytes,
        state=State({"exporter": None, "auth": keys, "refusals": guard.refusal_log(), "admission": admission}),
        guards=[*guards(RateLimiter(settings.rate_limit, settings.rate_limit_burst or None)), json_only],
        middleware=[shed_when_full(admission), request_timeout(settings.request_timeout_s)],
        openapi_config=_openapi(settings),
        template_config=http_ui.TEMPLATES,
        debug=False,
    )

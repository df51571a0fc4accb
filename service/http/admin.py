"""Authors' endpoints: reload rules/ and rego/, roll back, activate a stored version, the shadow summary."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.datastructures import State

from service.errors import NotSupportedWithWorkers, ShadowNotConfigured
from service.http.common import json_response, runtime
from service.http.guard import roles
from service.usecases.serving import Runtime


def single_process(state: State, what: str) -> Runtime:
    """The runtime, unless this process is one of several workers (serve --workers N): a version
    change would reach only the worker that accepted the connection, and the workers would then
    serve different versions."""
    current = runtime(state)
    workers = current.settings.workers
    if workers > 1:
        raise NotSupportedWithWorkers(
            f"{what} is not supported with {workers} workers: it would reach only the worker that accepted "
            "the connection; start serve with --watch (every worker polls rules/ and rego/ and reloads itself) "
            "or restart the service"
        )
    return current


@post(
    "/admin/reload",
    summary="Load rules/ and rego/ as a new version; 422 with file:line:column if invalid",
    opt=roles("author"),
)
async def reload(state: State) -> Response[bytes]:
    return json_response(await single_process(state, "POST /admin/reload").reload())


@post("/admin/rollback", summary="Serve the version served before the current one", opt=roles("author"))
async def rollback(state: State) -> Response[bytes]:
    return json_response(await single_process(state, "POST /admin/rollback").rollback())


@post(
    "/admin/activate/{version:str}",
    summary="Serve any stored version (a unique prefix of 6+ characters)",
    opt=roles("author"),
)
async def activate(state: State, version: str) -> Response[bytes]:
    return json_response(await single_process(state, "POST /admin/activate").activate(version))


@get(
    "/admin/shadow",
    summary="How the shadow candidate decides the live requests differently (serve --shadow)",
    opt=roles("author"),
)
async def shadow(state: State) -> Response[bytes]:
    current = runtime(state)
    if current.shadow is None:
        raise ShadowNotConfigured("no shadow candidate: start serve with --shadow DIR (or OPSGATE_SHADOW=DIR)")
    return json_response(current.shadow.summary(current.current.version))


ROUTES = [reload, rollback, activate, shadow]

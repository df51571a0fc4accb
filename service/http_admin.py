"""Authors' endpoints: reload rules/ and rego/, roll back, activate a stored version, the shadow summary."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.datastructures import State

from service.errors import ShadowNotConfigured
from service.http_common import json_response, runtime


@post("/admin/reload", summary="Load rules/ and rego/ as a new version; 422 with file:line:column if invalid")
async def reload(state: State) -> Response[bytes]:
    return json_response(await runtime(state).reload())


@post("/admin/rollback", summary="Serve the version served before the current one")
async def rollback(state: State) -> Response[bytes]:
    return json_response(await runtime(state).rollback())


@post("/admin/activate/{version:str}", summary="Serve any stored version (a unique prefix of 6+ characters)")
async def activate(state: State, version: str) -> Response[bytes]:
    return json_response(await runtime(state).activate(version))


@get("/admin/shadow", summary="How the shadow candidate decides the live requests differently (serve --shadow)")
async def shadow(state: State) -> Response[bytes]:
    current = runtime(state)
    if current.shadow is None:
        raise ShadowNotConfigured("no shadow candidate: start serve with --shadow DIR (or OPSGATE_SHADOW=DIR)")
    return json_response(current.shadow.summary(current.current.version))


ROUTES = [reload, rollback, activate, shadow]

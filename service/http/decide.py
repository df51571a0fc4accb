"""POST /decide, /decide/batch and /run: decode the facts, call the decision service, encode its answer.

Each call is admitted first (service/usecases/admission.py): past this process's bound of decisions in
flight it is answered 503 ``overloaded`` before its facts are decoded (and, when not even one more
decision could wait, before it gets here: ``http/limits.py``).  A batch weighs its items, so its envelope is read (not
its items) before it is admitted; an unknown ruleset is 404 before that.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from service.errors import OpsgateError
from service.http.bodies import batch_facts, batch_items
from service.http.common import admission, caller, json_response, runtime, trace_parent
from service.http.envelope import batch_envelope, envelope
from service.http.guard import roles
from service.http.queries import explain_full

RUN_RULESET = "ops"  # POST /run is POST /decide/ops, whatever the default ruleset


async def _decide(request: Request[Any, Any, Any], state: State, ruleset_name: str) -> Response[bytes]:
    full = explain_full(request.query_params)
    body = await request.body()
    current = runtime(state)
    async with current.use() as served:
        ruleset = served.catalog.get(ruleset_name)
        async with admission(state).admitted(1):
            started = time.perf_counter()  # the decode lap counts from here, as the record shows it
            facts = ruleset.decoder.decode_json(body, served.service.json_limits)
            response = await served.service.decide_facts(ruleset, facts, caller(request), started=started,
                                                         explain_full=full, parent=trace_parent(request))  # fmt: skip
    current.offer_shadow([response])
    return json_response(envelope(response))


async def _decide_batch(request: Request[Any, Any, Any], state: State, ruleset_name: str) -> Response[bytes]:
    body = await request.body()
    current = runtime(state)
    async with current.use() as served:  # one version for the whole batch
        ruleset = served.catalog.get(ruleset_name)
        raws = batch_items(body)
        async with admission(state).admitted(len(raws)):
            started = time.perf_counter()
            items = batch_facts(ruleset, raws, served.service.json_limits)
            valid = [facts for facts in items if isinstance(facts, dict)]
            decided = await served.service.decide_batch(
                ruleset, valid, caller(request), started=started, parent=trace_parent(request)
            )
    answers = iter(decided)
    results = [next(answers) if isinstance(item, dict) else item for item in items]
    current.offer_shadow([r for r in results if not isinstance(r, OpsgateError)])
    return json_response(batch_envelope(results))


@post("/decide", summary="Decide with the default ruleset (ops)", status_code=200, opt=roles("decide"))
async def decide_default(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    return await _decide(request, state, state.runtime.settings.default_ruleset)


@post("/decide/{ruleset:str}", summary="Decide with the named ruleset", status_code=200, opt=roles("decide"))
async def decide_named(request: Request[Any, Any, Any], state: State, ruleset: str) -> Response[bytes]:
    return await _decide(request, state, ruleset)


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
    return await _decide(request, state, RUN_RULESET)


# in the order the app registers them: /decide/batch before /decide/{ruleset}
ROUTES = [decide_default, decide_batch_default, decide_named, decide_batch_named, run_ops]

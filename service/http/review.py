"""The reviewers' JSON API: the decision log, outcomes, chain heads and ruleset versions."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State

from service.http.bodies import outcome_request
from service.http.common import caller, json_response, runtime
from service.http.guard import authenticated, roles
from service.http.queries import ProofQuery, decision_query, decode_query


@get("/decisions", summary="Logged decisions, newest first, filtered and paged with a cursor", opt=roles("audit"))
async def list_decisions(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    query = decision_query(request.query_params)
    return json_response(await runtime(state).review.query(query))


@get("/decisions/{decision_id:str}", summary="One decision's full record, with its outcomes", opt=roles("audit"))
async def show_decision(state: State, decision_id: str) -> Response[bytes]:
    return json_response(await runtime(state).review.decision(decision_id))


@get(
    "/decisions/{decision_id:str}/explain",
    summary="One sentence per fired rule, with the actual values",
    opt=roles("audit"),
)
async def explain_decision(state: State, decision_id: str) -> Response[bytes]:
    return json_response(await runtime(state).review.explain(decision_id))


@get(
    "/decisions/{decision_id:str}/proof",
    summary="The decision's inclusion proof: its record, leaf hash and audit path, and the signed checkpoint",
    opt=roles("audit"),
)
async def prove_decision(request: Request[Any, Any, Any], state: State, decision_id: str) -> Response[bytes]:
    query = decode_query(request.query_params, ProofQuery)
    return json_response(await state.proofs.prove(decision_id, query.from_size))


@post(
    "/decisions/{decision_id:str}/replay",
    summary="Re-decide the stored facts with the current version",
    opt=roles("audit"),
)
async def replay_decision(state: State, decision_id: str) -> Response[bytes]:
    return json_response(await runtime(state).review.replay(decision_id))


@post(
    "/decisions/{decision_id:str}/outcome",
    summary="Record what happened: SUCCEEDED, FAILED or CANCELLED; by the caller that asked for the decision "
    "(or an approve or admin key), once its actions were approved",
    opt=roles("decide", "approve"),
)
async def record_outcome(request: Request[Any, Any, Any], state: State, decision_id: str) -> Response[bytes]:
    outcome = outcome_request(await request.body())
    key = authenticated(request)
    for_anyone = key is not None and key.may(("approve",))  # admin may call every route
    review = runtime(state).review
    recorded = await review.record_outcome(
        decision_id, outcome.status, outcome.detail, caller(request), for_anyone=for_anyone
    )
    return json_response(recorded, 201)


@get("/log/head", summary="The latest hash of each chain, to anchor elsewhere", opt=roles("audit"))
async def log_head(state: State) -> Response[bytes]:
    return json_response(await runtime(state).review.heads())


@get("/rulesets", summary="Every loaded version of rules/ and rego/, the current one marked", opt=roles("audit"))
async def list_versions(state: State) -> Response[bytes]:
    return json_response(await runtime(state).review.versions())


@get(
    "/rulesets/{version:str}",
    summary="A version's files (a unique prefix of 6+ characters will do)",
    opt=roles("audit"),
)
async def show_version(state: State, version: str) -> Response[bytes]:
    return json_response(await runtime(state).review.version(version))


@get(
    "/rulesets/{a:str}/diff/{b:str}",
    summary="Unified diff of every file from version a to version b",
    opt=roles("audit"),
)
async def diff_versions(state: State, a: str, b: str) -> Response[str]:
    text = await runtime(state).review.diff(a, b)
    return Response(text, media_type=MediaType.TEXT)


ROUTES = [list_decisions, show_decision, explain_decision, prove_decision, replay_decision, record_outcome, log_head,
          list_versions, show_version, diff_versions]  # fmt: skip

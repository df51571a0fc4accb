"""The policy API for agents and services that decide themselves: ``POST /v1/policy/evaluate`` (they
propose, opsgate guards and logs) and ``/v1/policy/decisions`` (decisions made and executed elsewhere,
recorded for audit only).  Decode, call one use case, encode.

Guarding a proposal takes the ``decide`` role and room in the admission bound, as /decide does;
recording a decision made elsewhere takes ``decide`` too, listing them ``audit``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State

from service.domain.proposed import Proposer, RulesWould
from service.http.bodies import evaluate_facts, evaluate_request, external_decision
from service.http.common import admission, caller, json_response, runtime, trace_parent
from service.http.guard import roles
from service.http.queries import decision_query
from service.usecases.answer import Result
from service.usecases.evaluate import evaluate
from service.usecases.history import DecisionHistory


# The body of a guarded proposal: /decide's, with who proposed and the rules' second opinion.  A
# comment, not a docstring: msgspec would publish a docstring as the schema's description.
class EvaluationEnvelope(msgspec.Struct, frozen=True):
    agent: str
    result: Result
    proposer: Proposer
    rules_would: RulesWould
    status: str = "success"


@post(
    "/v1/policy/evaluate",
    summary="Guard a proposal made elsewhere: the ruleset's guardrails and outcome rules, logged with its proposer",
    status_code=200,
    opt=roles("decide"),
)
async def evaluate_proposal(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    body = await request.body()
    async with runtime(state).use() as served:
        served.service.json_limits.check(body)
        asked = evaluate_request(body)
        ruleset = served.catalog.get(asked.ruleset)
        async with admission(state).admitted(1):
            started = time.perf_counter()
            facts = evaluate_facts(ruleset, asked)
            evaluated = await evaluate(served.service, ruleset, facts, asked.proposal, asked.proposer,
                                       caller(request), started=started, parent=trace_parent(request))  # fmt: skip
    envelope = EvaluationEnvelope(evaluated.agent, evaluated.result, evaluated.proposer, evaluated.rules_would)
    return json_response(envelope)


@post(
    "/v1/policy/decisions",
    summary="Record a decision made and executed elsewhere, for audit only (chained, never one of opsgate's own)",
    status_code=201,
    opt=roles("decide"),
)
async def record_decision(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    external = external_decision(await request.body())
    history = DecisionHistory(runtime(state).log.records)
    return json_response(await history.record(external, caller(request)), 201)


@get(
    "/v1/policy/decisions",
    summary="Decisions recorded from elsewhere, newest first, with the filters of /decisions",
    opt=roles("audit"),
)
async def list_recorded(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    query = decision_query(request.query_params)
    return json_response(await DecisionHistory(runtime(state).log.records).query(query))


ROUTES = [evaluate_proposal, record_decision, list_recorded]

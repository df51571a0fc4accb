"""The Operations API: the decisions waiting for a person, their approval or rejection, and the dashboard."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from service.domain.record import now
from service.http.bodies import approval_request
from service.http.common import actions, caller, json_response, runtime
from service.http.guard import roles
from service.http.queries import dashboard_window, pending_limit
from service.usecases.dashboard import dashboard


@get(
    "/operations/decisions/pending",
    summary="Decisions waiting for approval (PENDING_APPROVAL), oldest first, with their explanations",
    opt=roles("approve"),
)
async def pending_decisions(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    limit = pending_limit(request.query_params)
    return json_response(await runtime(state).approvals.pending(limit))


@post(
    "/operations/decisions/{decision_id:str}/execute",
    summary="Approve a pending decision (EXECUTED); body {reason}; not by the caller that asked for it",
    opt=roles("approve"),
)
async def execute_decision(request: Request[Any, Any, Any], state: State, decision_id: str) -> Response[bytes]:
    request_body = approval_request(await request.body())
    return json_response(await runtime(state).approvals.execute(decision_id, request_body.reason, caller(request)))


@post(
    "/operations/decisions/{decision_id:str}/reject",
    summary="Reject a pending decision (REJECTED); body {reason}; not by the caller that asked for it",
    opt=roles("approve"),
)
async def reject_decision(request: Request[Any, Any, Any], state: State, decision_id: str) -> Response[bytes]:
    request_body = approval_request(await request.body())
    return json_response(await runtime(state).approvals.reject(decision_id, request_body.reason, caller(request)))


@get(
    "/dashboard",
    summary="Counts by decision type and status in a window, pending approvals, denials by policy, breaker, latency",
    opt=roles("approve", "audit"),
)
async def show_dashboard(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    at = now()
    since, until = dashboard_window(request.query_params, at)
    current = runtime(state)
    log, breaker = current.log, current.guardrails.breaker.state
    board = await dashboard(log.statistics, log.approvals, breaker, since, until, at, await actions(state))
    return json_response(board)


ROUTES = [pending_decisions, execute_decision, reject_decision, show_dashboard]

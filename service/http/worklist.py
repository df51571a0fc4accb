"""The reviewer pages of the work people do: /ui/pending (the approval queue, answered from its
forms) and /ui/dashboard (the /dashboard figures as charts).  Same use cases as the JSON API."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template

from service.domain.record import now
from service.http import charts
from service.http.bodies import approval_request
from service.http.common import actions, caller, runtime
from service.http.guard import roles
from service.http.queries import dashboard_window, pending_limit
from service.usecases.dashboard import dashboard
from service.usecases.status import STATUSES

WINDOWS = ("15m", "1h", "6h", "24h", "7d", "31d")  # the dashboard page's window links


@get("/pending", include_in_schema=False, opt=roles("approve", "audit"))
async def pending_page(request: Request[Any, Any, Any], state: State) -> Template:
    params = {k: v for k, v in request.query_params.items() if k == "limit"}
    queue = await runtime(state).approvals.pending(pending_limit(params))
    answered = {k: request.query_params.get(k, "") for k in ("answered", "status")}
    return Template("pending.html", context={"queue": queue, "answered": answered})


async def _answer(request: Request[Any, Any, Any], state: State, decision_id: str, verb: str) -> Redirect:
    form = await request.form()
    body = approval_request(msgspec.json.encode({"reason": str(form.get("reason", ""))}))
    approvals = runtime(state).approvals
    answer = approvals.execute if verb == "execute" else approvals.reject
    done = await answer(decision_id, body.reason, caller(request))
    return Redirect(f"/ui/pending?answered={decision_id}&status={done['status']}", status_code=303)


@post("/pending/{decision_id:str}/execute", include_in_schema=False, opt=roles("approve"), status_code=303)
async def execute_form(request: Request[Any, Any, Any], state: State, decision_id: str) -> Redirect:
    return await _answer(request, state, decision_id, "execute")


@post("/pending/{decision_id:str}/reject", include_in_schema=False, opt=roles("approve"), status_code=303)
async def reject_form(request: Request[Any, Any, Any], state: State, decision_id: str) -> Redirect:
    return await _answer(request, state, decision_id, "reject")


def _charts(board: dict[str, Any]) -> dict[str, str]:
    decisions = board["decisions"]
    seen = [s for s in STATUSES if s in decisions["by_status"]] + [
        s for s in decisions["by_status"] if s not in STATUSES
    ]
    denials = board["guardrails"]["denials_by_policy"]
    latency = board["latency_ms"]
    escalation, total = board["escalation"], decisions["total"]
    pending = board["pending_approvals"]["oldest"]
    return {
        "timeline": charts.timeline(decisions["timeline"]["series"], decisions["timeline"]["bucket"], seen),
        "denials": charts.bars(
            "denials",
            [(p, d["denied"], f"{d['denied']} ({d['rate'] * 100:.1f}% of decisions)") for p, d in denials.items()],
            "Denials by policy",
            charts.color("ESCALATED"),
        ),
        "escalation": charts.gauge(
            "escalation",
            escalation["rate"],
            f"{escalation['rate'] * 100:.1f}% escalated ({escalation['escalated']} of {total} decisions)",
            "Escalation rate",
        ),  # fmt: skip
        "latency": charts.bars(
            "latency",
            [(name, ms, f"{ms:.2f} ms") for name, ms in latency.items() if ms is not None],
            "Decision latency percentiles",
        ),
        "pending": charts.bars(
            "pending",
            [(f"{p['ruleset']} …{p['decision_id'][-8:]}", p["age_s"], _waiting(p)) for p in pending],
            "Age of the oldest pending approvals",
            charts.color("PENDING_APPROVAL"),
        ),
        "breaker": charts.breaker(board["guardrails"]["breaker"]),
    }


def _waiting(item: dict[str, Any]) -> str:
    return f"{charts.duration(item['age_s'])} old, expires in {charts.duration(item['expires_in_s'])}"


@get("/dashboard", include_in_schema=False, opt=roles("approve", "audit"))
async def dashboard_page(request: Request[Any, Any, Any], state: State) -> Template:
    at = now()
    params = dict(request.query_params.items())
    since, until = dashboard_window(params, at)
    current = runtime(state)
    log, breaker = current.log, current.guardrails.breaker.state
    board = await dashboard(log.statistics, log.approvals, breaker, since, until, at, await actions(state))
    context = {"board": board, "charts": _charts(board), "windows": WINDOWS, "window": params.get("window", "1h")}
    return Template("dashboard.html", context=context)


ROUTES = [pending_page, execute_form, reject_form, dashboard_page]

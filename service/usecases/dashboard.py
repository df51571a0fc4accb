"""GET /dashboard: what the decisions of a time window looked like, and what waits for a person."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

from service.domain.record import age_s, now, query_time
from service.domain.schema import decode_query
from service.errors import BadRequest, Problem
from service.ports.log import ApprovalStore, StatisticsStore

DEFAULT_WINDOW = "1h"
MAX_WINDOW = timedelta(days=31)
_WINDOW = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class DashboardQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: str | None = None  # e.g. 15m, 1h, 7d: the window ending at ``until`` (default now)
    since: str | None = None  # RFC 3339, inclusive (instead of a window)
    until: str | None = None  # RFC 3339, exclusive


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"invalid query parameter {name}: {reason}", [Problem(reason, path=name)])


def _length(text: str) -> timedelta:
    match = _WINDOW.match(text)
    if not match:
        raise _bad("window", "a positive whole number and a unit s, m, h or d (e.g. 15m, 1h, 7d)")
    length = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if length > MAX_WINDOW:
        raise _bad("window", f"at most {MAX_WINDOW.days} days")
    return length


def parse_window(params: Mapping[str, str], at: str) -> tuple[str, str]:
    """[since, until) from ``?window=`` (default 1h, ending now) or ``?since=`` and ``?until=``."""
    query = decode_query(params, DashboardQuery)
    if query.window is not None and query.since is not None:
        raise _bad("window", "give either window or since, not both")
    until = query_time("until", query.until) if query.until else at
    if query.since is not None:
        since = query_time("since", query.since)
    else:
        length = _length(query.window or DEFAULT_WINDOW)
        try:
            since = (datetime.fromisoformat(until) - length).isoformat(timespec="microseconds")
        except OverflowError:
            raise _bad("until", "too early: the window would start before year 1") from None
    if since >= until:
        raise _bad("since", "must be before until")
    return since, until


async def dashboard(
    statistics: StatisticsStore, approvals: ApprovalStore, breaker: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """The dashboard for the window ``params`` asks for; ``breaker``: the OPA circuit breaker's state now."""
    at = now()
    since, until = parse_window(params, at)
    stats = await statistics.window_stats(since, until)
    pending, oldest = await approvals.pending_count(at)
    denials = {
        policy: {"denied": n, "rate": round(n / stats.decisions, 6) if stats.decisions else 0.0}
        for policy, n in sorted(stats.denied_by_policy.items())
    }
    return {
        "at": at,
        "window": {"since": since, "until": until},
        "decisions": {
            "total": stats.decisions,
            "by_decision_type": stats.by_decision_type,
            "by_execution_status": stats.by_execution_status,
        },
        "pending_approvals": {
            "count": pending,
            "oldest_created_at": oldest,
            "oldest_age_s": age_s(oldest, at) if oldest else None,
            "resolved_in_window": stats.approvals_resolved,
        },
        "guardrails": {"breaker": breaker, "denials_by_policy": denials},
        "latency_ms": {"p50": stats.latency_p50_ms, "p99": stats.latency_p99_ms},
    }

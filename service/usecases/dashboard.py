"""GET /dashboard: what the decisions of a time window looked like, and what waits for a person."""

from __future__ import annotations

from typing import Any

from service.domain.record import age_s
from service.ports.log import ApprovalStore, StatisticsStore


async def dashboard(
    statistics: StatisticsStore, approvals: ApprovalStore, breaker: str, since: str, until: str, at: str
) -> dict[str, Any]:
    """The dashboard of the window [``since``, ``until``) as seen ``at`` (now, in the log's form);
    ``breaker``: the OPA circuit breaker's state now."""
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

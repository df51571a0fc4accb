"""GET /dashboard: what the decisions of a time window looked like, and what waits for a person."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.domain.record import PendingItem, age_s
from service.domain.stats import BUCKETS
from service.ports.log import ApprovalStore, StatisticsStore
from service.usecases.status import ESCALATING

OLDEST_PENDING = 20  # the pending items the dashboard lists, oldest first
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def bucket_of(since: str, until: str) -> str:
    """The timeline's bucket for a window: a minute up to an hour, an hour up to three days, else a day."""
    length = datetime.fromisoformat(until) - datetime.fromisoformat(since)
    if length <= timedelta(hours=1):
        return "minute"
    return "hour" if length <= timedelta(days=3) else "day"


def _starts(since: str, until: str, bucket: str) -> list[str]:
    """The start of every bucket of the window, as the log's time cut to the bucket (empty ones too)."""
    chars, step = BUCKETS[bucket], _STEP[bucket]
    moment = datetime.fromisoformat(datetime.fromisoformat(since).isoformat()[:chars] + ":00:00"[: 19 - chars])
    moment = moment.replace(tzinfo=datetime.fromisoformat(since).tzinfo)
    end, starts = datetime.fromisoformat(until), []
    while moment < end:
        starts.append(moment.isoformat()[:chars])
        moment += step
    return starts


def timeline(counts: dict[str, dict[str, int]], since: str, until: str, bucket: str) -> list[dict[str, Any]]:
    """Every bucket of the window, oldest first, with its decisions by current status."""
    series = []
    for start in _starts(since, until, bucket):
        by_status = dict(sorted(counts.get(start, {}).items()))
        series.append({"start": start, "total": sum(by_status.values()), "by_status": by_status})
    return series


def _pending(item: PendingItem, at: str) -> dict[str, Any]:
    return {
        "decision_id": item.decision_id,
        "ruleset": item.ruleset,
        "requested_by": item.requested_by,
        "created_at": item.created_at,
        "age_s": age_s(item.created_at, at),
        "expires_at": item.expires_at,
        "expires_in_s": age_s(at, item.expires_at),
    }


def _queue(
    count: int, oldest: str | None, resolved: dict[str, int], waiting: list[PendingItem], at: str
) -> dict[str, Any]:
    return {
        "count": count,
        "oldest_created_at": oldest,
        "oldest_age_s": age_s(oldest, at) if oldest else None,
        "resolved_in_window": resolved,
        "oldest": [_pending(item, at) for item in waiting],
    }


def _by_status(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for by_status in counts.values():
        for status, n in by_status.items():
            totals[status] = totals.get(status, 0) + n
    return dict(sorted(totals.items()))


async def dashboard(
    statistics: StatisticsStore, approvals: ApprovalStore, breaker: str, since: str, until: str, at: str,
    actions: dict[str, int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The dashboard of the window [``since``, ``until``) as seen ``at`` (now, in the log's form);
    ``breaker``: the OPA circuit breaker's state now; ``actions``: the executors' outbox by state
    (None: no executors configured)."""
    bucket = bucket_of(since, until)
    stats = await statistics.window_stats(since, until, bucket)
    pending, oldest = await approvals.pending_count(at)
    waiting = await approvals.pending(at, OLDEST_PENDING)
    denials = {
        policy: {"denied": n, "rate": round(n / stats.decisions, 6) if stats.decisions else 0.0}
        for policy, n in sorted(stats.denied_by_policy.items())
    }
    by_status = _by_status(stats.timeline)
    escalated = sum(n for status, n in by_status.items() if status in ESCALATING)
    return {
        "at": at,
        "window": {"since": since, "until": until},
        "decisions": {
            "total": stats.decisions,
            "by_decision_type": stats.by_decision_type,
            "by_execution_status": stats.by_execution_status,
            "by_status": by_status,
            "timeline": {"bucket": bucket, "series": timeline(stats.timeline, since, until, bucket)},
        },
        "escalation": {
            "escalated": escalated,
            "rate": round(escalated / stats.decisions, 6) if stats.decisions else 0.0,
        },
        "pending_approvals": _queue(pending, oldest, stats.approvals_resolved, waiting, at),
        "guardrails": {"breaker": breaker, "denials_by_policy": denials},
        "latency_ms": {"p50": stats.latency_p50_ms, "p90": stats.latency_p90_ms, "p99": stats.latency_p99_ms},
        "executors": None if actions is None else {"by_state": actions},
    }

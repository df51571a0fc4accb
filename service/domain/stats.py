"""The dashboard's figures for a window of the log: what the store computes and the dashboard shows."""

from __future__ import annotations

import msgspec


class WindowStats(msgspec.Struct, frozen=True):
    """The decisions logged in [since, until)."""

    decisions: int
    by_decision_type: dict[str, int]
    by_execution_status: dict[str, int]
    denied_by_policy: dict[str, int]  # decisions a policy denied at least once
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    approvals_resolved: dict[str, int] = {}  # pending approvals EXECUTED, REJECTED or EXPIRED in the window
    latency_p90_ms: float | None = None
    timeline: dict[str, dict[str, int]] = {}  # bucket start (the log's time, cut) -> current status -> decisions


#: the buckets of a dashboard's timeline, as the number of leading characters of the log's time they keep
BUCKETS = {"minute": 16, "hour": 13, "day": 10}

"""A decision's current status on a real SQLite file and the real PostgreSQL: the status filter and the
dashboard's timeline read it from the records chained after the decision, as the status use case does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.adapters.store import StoreLog
from service.domain.record import DecisionQuery
from service.usecases.status import current_status, history
from tests.integration.test_decision_log_store import decision
from tests.records import executed, typed


def about(kind: str, decision_id: str, second: int, **fields: Any) -> dict[str, Any]:
    at = f"2026-11-21T10:01:{second:02d}.000000+00:00"
    return {"kind": kind, "decision_id": decision_id, "created_at": at, "caller": "bob", **fields}


def answered(status: str, decision_id: str, second: int) -> dict[str, Any]:
    return about("approval", decision_id, second, approval={"status": status, "reason": "checked",
                 "requested_by": "10.0.0.1", "expires_at": "2026-11-21T11:00:00.000000+00:00"})  # fmt: skip


def outcome(status: str, decision_id: str, second: int) -> dict[str, Any]:
    return about("outcome", decision_id, second, outcome={"status": status, "detail": "ran"})


def expired(decision_id: str, second: int) -> dict[str, Any]:
    terms = {"status": "EXPIRED", "reason": "late", "requested_by": "10.0.0.1",
             "expires_at": "2026-11-21T10:01:00.000000+00:00", "escalated": True,
             "escalation": {"decision_type": "OPS.ESCALATE", "autonomy": "L0"}}  # fmt: skip
    return about("expiry", decision_id, second, approval=terms)


def ids(n: int) -> str:
    return f"0000000{n:05d}"


# decision n: the status it was answered with, then the records about it, in order
STORY: list[tuple[str, list[Any]]] = [
    ("APPROVED", []),  # 1
    ("APPROVED", [lambda i: outcome("FAILED", i, 1), lambda i: outcome("SUCCEEDED", i, 2)]),  # 2
    ("PENDING_APPROVAL", [lambda i: answered("EXECUTED", i, 3)]),  # 3
    ("PENDING_APPROVAL", [lambda i: answered("EXECUTED", i, 4), lambda i: outcome("CANCELLED", i, 5)]),  # 4
    ("PENDING_APPROVAL", [lambda i: answered("REJECTED", i, 6)]),  # 5
    ("PENDING_APPROVAL", [lambda i: expired(i, 7)]),  # 6
    ("PENDING_APPROVAL", []),  # 7
    ("ESCALATED", []),  # 8
]
CURRENT = {1: "APPROVED", 2: "SUCCEEDED", 3: "EXECUTED", 4: "CANCELLED", 5: "REJECTED", 6: "EXPIRED",
           7: "PENDING_APPROVAL", 8: "ESCALATED"}  # fmt: skip


@pytest.fixture
def told(log: StoreLog) -> StoreLog:
    async def write() -> None:
        for n, (status, _) in enumerate(STORY, start=1):
            await log.records.append(typed(decision(n, decision_id=ids(n), execution=executed(status))))
        for n, (_, later) in enumerate(STORY, start=1):  # interleaved with other decisions' records
            for make in later:
                await log.records.append(typed(make(ids(n))))

    asyncio.run(write())
    return log


@pytest.mark.parametrize("status", sorted(set(CURRENT.values())))
def test_the_status_filter_keeps_the_decisions_whose_current_status_it_is(told: StoreLog, status: str) -> None:
    rows, _ = asyncio.run(told.records.query(DecisionQuery(status=status)))
    assert [row.decision_id for row in rows] == [ids(n) for n in sorted(CURRENT, reverse=True) if CURRENT[n] == status]


def test_the_use_case_derives_the_same_status_and_the_history_in_order(told: StoreLog) -> None:
    records = asyncio.run(told.records.get_many([ids(n) for n in CURRENT]))
    for n, expected in CURRENT.items():
        assert current_status([r for r in records if r.decision_id == ids(n)]) == expected, n
    steps = history(asyncio.run(told.records.get(ids(4))))
    assert [(s.event, s.status) for s in steps] == [
        ("decided", "PENDING_APPROVAL"), ("approved", "EXECUTED"), ("outcome", "CANCELLED")
    ]  # fmt: skip


def test_the_dashboard_timeline_counts_current_statuses_per_bucket(told: StoreLog) -> None:
    since, until = "2026-11-21T10:00:00.000000+00:00", "2026-11-21T10:02:00.000000+00:00"
    stats = asyncio.run(told.statistics.window_stats(since, until, "minute"))
    assert stats.timeline == {
        "2026-11-21T10:00": {"APPROVED": 1, "CANCELLED": 1, "ESCALATED": 1, "EXECUTED": 1, "EXPIRED": 1,
                             "PENDING_APPROVAL": 1, "REJECTED": 1, "SUCCEEDED": 1}
    }  # fmt: skip
    assert stats.by_execution_status == {"APPROVED": 2, "ESCALATED": 1, "PENDING_APPROVAL": 5}

"""The pending approvals kept in the decision log's store, on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from service.adapters.store import StoreLog, open_log, verify_log
from service.domain.record import Resolution, StoredRecord
from service.errors import AlreadyDecided, ApprovalExpired, Conflict, NotFound
from tests.conftest import sql
from tests.records import decided, decision_fields, executed, fired, guardrails, typed, violation

DECIDED = "2026-11-21T10:00:00.000000+00:00"
BEFORE_EXPIRY = "2026-11-21T10:30:00.000000+00:00"
EXPIRES = "2026-11-21T11:00:00.000000+00:00"
AFTER_EXPIRY = "2026-11-21T11:00:00.000001+00:00"


def decision(n: int, status: str = "PENDING_APPROVAL", **changes: Any) -> dict[str, Any]:
    """A deploy decision record as the pipeline writes it, as JSON fields (the store takes it typed)."""
    ruleset = {"name": "deploy", "version": "v1", "file": "rules/deploy.yaml"}
    record = decision_fields(f"d-{n:04d}", f"2026-11-21T10:00:{n % 60:02d}.000000+00:00", "alice", ruleset)
    record.update(
        facts={"org_id": 3, "scenario": "new_model", "traffic_pct": 50},
        fired_rules=[fired("new-model", True)],
        decision=decided("DEPLOY.NEW_MODEL", 0.9),
        execution=executed(status),
    )
    if status == "PENDING_APPROVAL":
        record["approval"] = {"expiry_s": 3600 - n, "expires_at": EXPIRES}
    record.update(changes)
    return record


def answer(decision_id: str, by: str, status: str = "EXECUTED", at: str = BEFORE_EXPIRY) -> Any:
    kind = "expiry" if status == "EXPIRED" else "approval"
    approval: dict[str, Any] = {"status": status, "reason": "checked the canary", "requested_by": "alice",
                                "expires_at": EXPIRES}  # fmt: skip
    if kind == "expiry":
        approval.update(escalated=True, escalation={"decision_type": "DEPLOY.ESCALATE", "autonomy": "L0"})
    return typed({"kind": kind, "decision_id": decision_id, "created_at": at, "caller": by, "approval": approval})


def resolve(store: StoreLog, decision_id: str, by: str, status: str = "EXECUTED", at: str = BEFORE_EXPIRY) -> Any:
    resolution = Resolution(decision_id, status, at, by)  # type: ignore[arg-type]
    return asyncio.run(store.approvals.resolve(answer(decision_id, by, status, at), resolution))


def append(store: StoreLog, records: list[dict[str, Any]]) -> list[StoredRecord]:
    return asyncio.run(store.records.append_many([typed(record) for record in records]))


def test_only_decisions_pending_approval_are_queued_with_who_asked_and_when_they_expire(log: StoreLog) -> None:
    append(log, [decision(1), decision(2, "APPROVED"), decision(3, caller="bob"), decision(4, "ESCALATED")])
    items = asyncio.run(log.approvals.pending(BEFORE_EXPIRY, 10))
    assert [(i.decision_id, i.ruleset, i.requested_by, i.created_at, i.expires_at) for i in items] == [
        ("d-0001", "deploy", "alice", "2026-11-21T10:00:01.000000+00:00", EXPIRES),
        ("d-0003", "deploy", "bob", "2026-11-21T10:00:03.000000+00:00", EXPIRES),
    ]
    assert items[0].decision.decision_id == "d-0001"
    assert items[0].decision.execution_status == "PENDING_APPROVAL"
    assert asyncio.run(log.approvals.pending_count(BEFORE_EXPIRY)) == (2, "2026-11-21T10:00:01.000000+00:00")


def test_a_pending_decision_without_approval_terms_waits_the_default_hour(log: StoreLog) -> None:
    record = decision(7)
    del record["approval"]
    append(log, [record])
    (item,) = asyncio.run(log.approvals.pending(BEFORE_EXPIRY, 10))
    assert item.expires_at == "2026-11-21T11:00:07.000000+00:00"


def test_a_decision_whose_record_cannot_be_written_leaves_no_pending_item(log: StoreLog, log_db: str) -> None:
    append(log, [decision(1)])
    with pytest.raises(Exception, match="decision log write failed"):
        append(log, [decision(2), decision(1)])  # d-0001 again: the whole group is refused
    assert sql(log_db, "SELECT decision_id FROM pending_approvals ORDER BY decision_id") == [("d-0001",)]
    assert sql(log_db, "SELECT COUNT(*) FROM log_entries") == [(1,)]


def test_the_pending_list_is_oldest_first_and_leaves_out_expired_items(log: StoreLog) -> None:
    append(
        log,
        [
            decision(5),
            decision(2),
            decision(9, approval={"expiry_s": 600.0, "expires_at": "2026-11-21T10:10:00+00:00"}),
        ],
    )
    at = "2026-11-21T10:20:00.000000+00:00"
    assert [i.decision_id for i in asyncio.run(log.approvals.pending(at, 10))] == ["d-0002", "d-0005"]
    assert [i.decision_id for i in asyncio.run(log.approvals.pending(at, 1))] == ["d-0002"]
    assert [i.decision_id for i in asyncio.run(log.approvals.due(at, 10))] == ["d-0009"]


def test_an_execution_is_chained_and_resolves_its_item_in_one_transaction(log: StoreLog, log_db: str) -> None:
    append(log, [decision(1)])
    stored = resolve(log, "d-0001", "bob")
    assert (stored.kind, stored.decision_id, stored.caller, stored.seq) == ("approval", "d-0001", "bob", 2)
    assert asyncio.run(log.approvals.pending(BEFORE_EXPIRY, 10)) == []
    assert sql(log_db, "SELECT status, resolved_at, resolved_by FROM pending_approvals") == [
        ("EXECUTED", BEFORE_EXPIRY, "bob")
    ]
    assert [r.kind for r in asyncio.run(log.records.get("d-0001"))] == ["decision", "approval"]
    assert str(verify_log(log_db)).splitlines()[0] == "2 records verified, chain intact"


def test_a_second_answer_is_refused_and_writes_nothing(log: StoreLog, log_db: str) -> None:
    append(log, [decision(1)])
    resolve(log, "d-0001", "bob", "REJECTED")
    with pytest.raises(AlreadyDecided, match="already decided: REJECTED by bob"):
        resolve(log, "d-0001", "carol")
    assert sql(log_db, "SELECT COUNT(*) FROM log_entries") == [(2,)]
    assert str(verify_log(log_db)).splitlines()[0] == "2 records verified, chain intact"


def test_an_answer_after_the_expiry_is_refused_as_expired_until_the_item_is_expired(log: StoreLog) -> None:
    append(log, [decision(1)])
    with pytest.raises(ApprovalExpired, match=re.escape(f"expired at {EXPIRES}: it can no longer")):
        resolve(log, "d-0001", "bob", at=AFTER_EXPIRY)
    with pytest.raises(Conflict, match="does not expire before"):
        resolve(log, "d-0001", "opsgate", "EXPIRED", at=BEFORE_EXPIRY)
    assert resolve(log, "d-0001", "opsgate", "EXPIRED", at=AFTER_EXPIRY).kind == "expiry"
    with pytest.raises(AlreadyDecided, match="already decided: EXPIRED by opsgate"):
        resolve(log, "d-0001", "bob", at=AFTER_EXPIRY)
    assert asyncio.run(log.approvals.due(AFTER_EXPIRY, 10)) == []


def test_an_answer_to_a_decision_never_queued_is_not_found(log: StoreLog) -> None:
    append(log, [decision(1, "APPROVED")])
    with pytest.raises(NotFound, match="'d-0001' is not awaiting approval"):
        resolve(log, "d-0001", "bob")


def test_of_two_replicas_approving_the_same_items_at_once_exactly_one_wins_each(log: StoreLog, log_db: str) -> None:
    append(log, [decision(n) for n in range(40)])
    other = open_log(log_db, "replica-b")

    ready = threading.Barrier(2)

    async def approve_all(store: StoreLog, who: str) -> list[Any]:
        ready.wait()  # both replicas answer the same items, one after the other, in step
        results: list[Any] = []
        for n in range(40):
            resolution = Resolution(f"d-{n:04d}", "EXECUTED", BEFORE_EXPIRY, who)
            try:
                results.append(await store.approvals.resolve(answer(f"d-{n:04d}", who), resolution))
            except AlreadyDecided as refused:
                results.append(refused)
        return results

    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(asyncio.run, approve_all(log, "bob"))
            second = pool.submit(asyncio.run, approve_all(other, "carol"))
            by_bob, by_carol = first.result(), second.result()
    finally:
        other.close()
    for mine, theirs in zip(by_bob, by_carol, strict=True):
        outcomes = sorted(type(r).__name__ for r in (mine, theirs))
        assert outcomes == ["AlreadyDecided", "StoredRecord"]
    winners = dict(sql(log_db, "SELECT decision_id, resolved_by FROM pending_approvals"))
    assert len(winners) == 40
    logged = sql(log_db, "SELECT decision_id, caller FROM log_entries WHERE kind = 'approval'")
    assert sorted(logged) == sorted(winners.items())
    report = verify_log(log_db)  # which replica won which item varies: 1 or 2 chains
    assert (report.ok, report.records) == (True, 80)


def test_window_stats_count_by_type_and_status_denials_by_policy_and_latency_percentiles(
    log: StoreLog,
) -> None:
    denied = guardrails(violation("guardrails.deploy.bypass", "DEPLOY-BYPASS"))
    records = [decision(n, "APPROVED", latency_ms={"total": float(n)}) for n in range(1, 101)]
    records[0] = decision(1, "ESCALATED", latency_ms={"total": 1.0}, guardrails=denied,
                          decision=decided("DEPLOY.ESCALATE", 1.0))  # fmt: skip
    records.append(decision(200, created_at="2026-11-21T12:00:00.000000+00:00"))  # outside the window
    append(log, records)
    resolve(log, "d-0200", "bob", at="2026-11-21T10:30:00.000000+00:00")
    stats = asyncio.run(log.statistics.window_stats("2026-11-21T10:00:00+00:00", "2026-11-21T11:00:00+00:00"))
    assert stats.decisions == 100
    assert stats.by_decision_type == {"DEPLOY.ESCALATE": 1, "DEPLOY.NEW_MODEL": 99}
    assert stats.by_execution_status == {"APPROVED": 99, "ESCALATED": 1}
    assert stats.denied_by_policy == {"guardrails.deploy.bypass": 1}
    assert (stats.latency_p50_ms, stats.latency_p99_ms) == (50.0, 99.0)
    assert stats.approvals_resolved == {"EXECUTED": 1}


def test_window_stats_of_an_empty_window_have_no_latency(log: StoreLog) -> None:
    stats = asyncio.run(log.statistics.window_stats("2026-11-21T10:00:00+00:00", "2026-11-21T11:00:00+00:00"))
    assert (stats.decisions, stats.latency_p50_ms, stats.latency_p99_ms) == (0, None, None)

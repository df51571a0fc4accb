"""The outbox of approved actions in the decision log's store, on a real SQLite file and on the real
PostgreSQL: queued in the transaction of the record or the approval that approves them, settled once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.adapters.store import StoreLog, open_log, verify_log
from service.domain.record import ActionDelivery, OutcomeRecord, OutcomeReport, Resolution
from service.errors import DecisionLogError
from tests.conftest import sql
from tests.integration.test_approvals_store import AFTER_EXPIRY, BEFORE_EXPIRY, answer, decision

TYPES = frozenset({"DEPLOY", "NOTIFY"})
ACTIONS = [{"type": "DEPLOY", "component": "ranker"}, {"type": "PAGE", "team": "ml"}, {"type": "NOTIFY", "to": "ml"}]
DUE = "2026-11-21T12:00:00.000000+00:00"


@pytest.fixture
def outbox_log(log_db: str) -> Iterator[StoreLog]:
    store = open_log(log_db, "replica-a", action_types=TYPES)
    yield store
    store.close()


def with_actions(n: int, status: str, **changes: Any) -> dict[str, Any]:
    record = decision(n, status, **changes)
    record["execution"] = {"status": status, "actions": ACTIONS}
    return record


def append(store: StoreLog, records: list[dict[str, Any]]) -> None:
    from tests.records import typed

    asyncio.run(store.records.append_many([typed(record) for record in records]))


def rows(db: str) -> list[tuple[Any, ...]]:
    query = "SELECT decision_id, action_index, writer, action_type, state, attempts FROM action_outbox ORDER BY 1, 2"
    return [tuple(row) for row in sql(db, query)]


def outcome(decision_id: str, index: int, state: str = "DELIVERED") -> OutcomeRecord:
    delivery = ActionDelivery(index, "DEPLOY", f"{decision_id}:{index}", state, 1, 200)
    report = OutcomeReport("SUCCEEDED" if state == "DELIVERED" else "FAILED", "done")
    return OutcomeRecord(decision_id=decision_id, created_at=DUE, caller="executor:DEPLOY", outcome=report,
                         action=delivery)  # fmt: skip


def test_only_approved_decisions_queue_their_actions_that_have_an_executor(outbox_log: StoreLog, log_db: str) -> None:
    append(outbox_log, [with_actions(1, "APPROVED"), with_actions(2, "ESCALATED"), with_actions(3, "PENDING_APPROVAL")])
    assert rows(log_db) == [
        ("d-0001", 0, "replica-a", "DEPLOY", "PENDING", 0),
        ("d-0001", 2, "replica-a", "NOTIFY", "PENDING", 0),
    ]
    (body,) = sql(log_db, "SELECT body FROM action_outbox WHERE action_index = 2")
    assert json.loads(str(body[0])) == {
        "idempotency_key": "d-0001:2", "decision_id": "d-0001", "action_index": 2,
        "action": {"type": "NOTIFY", "to": "ml"}, "ruleset": "deploy", "ruleset_version": "v1",
        "decision_type": "DEPLOY.NEW_MODEL", "requested_by": "alice", "approved_by": None,
    }  # fmt: skip


def test_without_executors_nothing_is_queued(log: StoreLog, log_db: str) -> None:
    append(log, [with_actions(1, "APPROVED")])
    assert rows(log_db) == []


def test_a_record_that_cannot_be_written_queues_nothing(outbox_log: StoreLog, log_db: str) -> None:
    append(outbox_log, [with_actions(1, "APPROVED")])
    with pytest.raises(DecisionLogError):  # the same decision id again: the unique index refuses the record
        append(outbox_log, [with_actions(2, "APPROVED", decision_id="d-0001")])
    assert [r[:2] for r in rows(log_db)] == [("d-0001", 0), ("d-0001", 2)]


def resolve(store: StoreLog, decision_id: str, status: str) -> None:
    resolution = Resolution(decision_id, status, BEFORE_EXPIRY, "carol")  # type: ignore[arg-type]
    asyncio.run(store.approvals.resolve(answer(decision_id, "carol", status), resolution))


def test_an_executed_approval_queues_the_actions_with_its_approval_a_rejection_or_expiry_none(
    outbox_log: StoreLog, log_db: str
) -> None:
    append(outbox_log, [with_actions(n, "PENDING_APPROVAL") for n in (1, 2, 3)])
    assert rows(log_db) == []
    resolve(outbox_log, "d-0001", "EXECUTED")
    resolve(outbox_log, "d-0002", "REJECTED")
    expired = Resolution("d-0003", "EXPIRED", AFTER_EXPIRY, "opsgate")
    asyncio.run(outbox_log.approvals.resolve(answer("d-0003", "opsgate", "EXPIRED", AFTER_EXPIRY), expired))
    assert [r[:2] for r in rows(log_db)] == [("d-0001", 0), ("d-0001", 2)]
    (body,) = sql(log_db, "SELECT body, next_at FROM action_outbox WHERE action_index = 0")
    assert json.loads(str(body[0]))["approved_by"] == "carol" and body[1] == BEFORE_EXPIRY


def test_an_executed_approval_of_a_compressed_decision_queues_its_actions(outbox_log: StoreLog, log_db: str) -> None:
    """The decision read back in the approval's transaction may be stored compressed (SQLite: every
    decision after the writer's first of a ruleset version); it is read as text all the same."""
    append(outbox_log, [with_actions(n, "PENDING_APPROVAL") for n in (1, 2, 3)])
    if not log_db.startswith("postgresql"):
        stored = sql(log_db, "SELECT body FROM log_entries WHERE decision_id = 'd-0003'")
        assert isinstance(stored[0][0], bytes)  # the case under test: not the dictionary's plain text
    resolve(outbox_log, "d-0003", "EXECUTED")
    assert [r[:2] for r in rows(log_db)] == [("d-0003", 0), ("d-0003", 2)]


def test_due_items_are_settled_once_with_their_outcome_and_retries_wait(outbox_log: StoreLog, log_db: str) -> None:
    append(outbox_log, [with_actions(1, "APPROVED")])
    first, second = asyncio.run(outbox_log.outbox.due(DUE, 10))
    assert (first.key, second.key, first.attempts) == ("d-0001:0", "d-0001:2", 0)
    asyncio.run(outbox_log.outbox.retry(second, "POST x: answered 500", "2026-11-21T12:00:05.000000+00:00"))
    assert [i.key for i in asyncio.run(outbox_log.outbox.due(DUE, 10))] == ["d-0001:0"]  # the retry waits
    assert asyncio.run(outbox_log.outbox.settle(first, "DELIVERED", outcome("d-0001", 0), DUE)) is True
    assert asyncio.run(outbox_log.outbox.settle(first, "DELIVERED", outcome("d-0001", 0), DUE)) is False  # again
    later = asyncio.run(outbox_log.outbox.due("2026-11-21T12:00:06.000000+00:00", 10))
    assert [(i.key, i.attempts, i.last_error) for i in later] == [("d-0001:2", 1, "POST x: answered 500")]
    assert asyncio.run(outbox_log.outbox.settle(later[0], "DEAD", outcome("d-0001", 2, "DEAD"), DUE)) is True
    assert asyncio.run(outbox_log.outbox.counts()) == {"PENDING": 0, "DELIVERED": 1, "DEAD": 1}
    assert [(i.key, i.state, i.attempts) for i in asyncio.run(outbox_log.outbox.of_decision("d-0001"))] == [
        ("d-0001:0", "DELIVERED", 1), ("d-0001:2", "DEAD", 2),
    ]  # fmt: skip
    kinds = sql(log_db, "SELECT kind FROM log_entries WHERE decision_id = 'd-0001' ORDER BY id")
    assert [k[0] for k in kinds] == ["decision", "outcome", "outcome"]  # one outcome each, chained
    assert verify_log(log_db).ok


def test_each_writer_delivers_only_its_own_items(log_db: str) -> None:
    a, b = open_log(log_db, "replica-a", action_types=TYPES), open_log(log_db, "replica-b", action_types=TYPES)
    try:
        append(a, [with_actions(1, "APPROVED")])
        append(b, [with_actions(2, "APPROVED")])
        assert {i.decision_id for i in asyncio.run(a.outbox.due(DUE, 10))} == {"d-0001"}
        assert {i.decision_id for i in asyncio.run(b.outbox.due(DUE, 10))} == {"d-0002"}
    finally:
        a.close()
        b.close()

"""Where a decision stands now, derived from the log's records about it.

A decision's record holds the status it was answered with (APPROVED, ESCALATED,
PENDING_APPROVAL); the records chained after it move it on: a person's answer
(EXECUTED, REJECTED), the sweeper's expiry (EXPIRED), an outcome reported for it
(SUCCEEDED, FAILED, CANCELLED).  The current status is the one of the latest of
them, in the log's order; the store's status filter (``current_status_sql``) reads
the same records the same way.
"""

from __future__ import annotations

import msgspec

from service.domain.decision import PENDING_APPROVAL
from service.domain.record import (
    ApprovalRecord,
    DecisionRecord,
    ExpiryRecord,
    ExternalRecord,
    OutcomeRecord,
    Record,
    StoredRecord,
)

#: the statuses a decision can have now, in the order the pages list them
STATUSES = ("APPROVED", "PENDING_APPROVAL", "EXECUTED", "REJECTED", "EXPIRED", "ESCALATED",
            "SUCCEEDED", "FAILED", "CANCELLED")  # fmt: skip
#: the statuses that hand the decision to a person (the escalation rate counts them)
ESCALATING = ("ESCALATED", "EXPIRED")


class Step(msgspec.Struct, frozen=True):
    """One record of a decision's history: what it made the status, when and by whom."""

    event: str  # decided | approved | rejected | expired | outcome
    status: str
    at: str
    by: str
    detail: str
    log_id: int
    hash: str


def _step(stored: StoredRecord, record: Record) -> Step:
    def of(event: str, status: str, detail: str) -> Step:
        return Step(event, status, record.created_at, record.caller, detail, stored.id, stored.hash)

    match record:
        case DecisionRecord():
            return of("decided", record.execution.status, record.summary)
        case ApprovalRecord():
            event = "approved" if record.approval.status == "EXECUTED" else "rejected"
            return of(event, record.approval.status, record.approval.reason)
        case ExpiryRecord():
            escalated = f"; escalated to {record.approval.escalation.decision_type}"
            return of("expired", record.approval.status, record.approval.reason + escalated)
        case OutcomeRecord():
            return of("outcome", record.outcome.status, record.outcome.detail)
        case ExternalRecord():  # decided elsewhere: its status there, nothing after it
            return of("recorded", record.external.status, "made and executed elsewhere; recorded for audit")


def history(records: list[StoredRecord]) -> list[Step]:
    """A decision's steps in the log's order: its record first, then every record about it."""
    ordered = sorted(records, key=lambda r: (r.kind != "decision", r.id))
    return [_step(stored, stored.record()) for stored in ordered]


def current_status(records: list[StoredRecord]) -> str:
    """The status of a decision now: the one of its latest record (see the module's docstring)."""
    steps = history(records)
    return steps[-1].status if steps else "unknown"


def approval_state(records: list[StoredRecord]) -> str:
    """Where a decision's actions stand, outcomes left aside: its execution status, or for one that
    waited for approval the answer it got (EXECUTED, REJECTED, EXPIRED), or PENDING_APPROVAL."""
    return actions_state(history(records))


def actions_state(steps: list[Step]) -> str:
    """``approval_state`` of a decision's history."""
    answered = [step for step in steps if step.event != "outcome"]
    if not answered:
        return "unknown"
    if answered[0].status != PENDING_APPROVAL:
        return answered[0].status
    return answered[-1].status


def by_decision(records: list[StoredRecord]) -> dict[str, list[StoredRecord]]:
    """Records grouped by the decision they are about."""
    grouped: dict[str, list[StoredRecord]] = {}
    for stored in records:
        grouped.setdefault(stored.decision_id, []).append(stored)
    return grouped

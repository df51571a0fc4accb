"""Human approval of the decisions that wait for a person (execution.status PENDING_APPROVAL).

The log's store queues such a decision in the same transaction as its record.  A person
executes or rejects it (never the caller that asked for it: separation of duties), each
answer chained into the log as an ``approval`` record; an item nobody answers before its
ruleset's ``approval_expiry_s`` is EXPIRED by the sweeper, which chains an ``expiry``
record saying it is escalated.  The store resolves an item only while it is PENDING, so of
two racing answers exactly one wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from service.background import beside
from service.domain import explain
from service.domain.decision import PENDING_APPROVAL
from service.domain.record import (
    ApprovalAnswer,
    ApprovalRecord,
    Escalation,
    ExpiryRecord,
    ExpiryTerms,
    PendingItem,
    Resolution,
    ResolvedStatus,
    StoredRecord,
    age_s,
    now,
)
from service.errors import Conflict, NotPending, SeparationOfDuties
from service.ports.log import ApprovalStore
from service.usecases.review import ReviewService, decision_of, present

log = logging.getLogger("opsgate.approvals")

EXPIRER = "opsgate"  # the caller of the expiry records the sweeper chains
SWEEP_BATCH = 100


def _as_logged(part: object) -> Any:
    """A part of a record with its keys in the order of its canonical body, as the queue shows it."""
    return msgspec.to_builtins(part, order="sorted")


class Approvals:
    """The pending queue, the answers to it and its expiry, over the decision log."""

    def __init__(self, log_store: ApprovalStore, review: ReviewService) -> None:
        self.log = log_store
        self.review = review

    async def pending(self, limit: int) -> dict[str, Any]:
        """The (at most ``limit``) items waiting now, oldest first, each with its decision and explanation."""
        at = now()
        items = await self.log.pending(at, limit)
        return {"at": at, "count": len(items), "items": [await self._item(item, at) for item in items]}

    async def _item(self, item: PendingItem, at: str) -> dict[str, Any]:
        record = decision_of(item.decision)
        ruleset = await self.review.ruleset_at(record)
        return {
            "decision_id": item.decision_id,
            "ruleset": item.ruleset,
            "requested_by": item.requested_by,
            "created_at": item.created_at,
            "expires_at": item.expires_at,
            "age_s": age_s(item.created_at, at),
            "expires_in_s": age_s(at, item.expires_at),
            "decision": _as_logged(record.decision),
            "execution": _as_logged(record.execution),
            "facts": record.facts,
            "explanation": {
                "ruleset": _as_logged(record.ruleset),
                "fired_rules": _as_logged(record.fired_rules),
                "proposal": _as_logged(record.proposal),
                "guardrails": _as_logged(record.guardrails),
                "summary": record.summary,
                "sentences": explain.sentences(record, ruleset),
            },
            "log_id": item.decision.id,
        }

    async def execute(self, decision_id: str, reason: str, approver: str) -> dict[str, Any]:
        """Approve a pending decision, saying why: it is EXECUTED."""
        return await self._answer(decision_id, reason, approver, "EXECUTED")

    async def reject(self, decision_id: str, reason: str, approver: str) -> dict[str, Any]:
        """Refuse a pending decision, saying why: it is REJECTED."""
        return await self._answer(decision_id, reason, approver, "REJECTED")

    async def _answer(self, decision_id: str, reason: str, approver: str, status: ResolvedStatus) -> dict[str, Any]:
        decided = await self._decision(decision_id)
        if approver == decided.caller:
            raise SeparationOfDuties(
                f"{approver!r} asked for decision {decision_id!r} and cannot also approve or reject it"
            )
        at = now()
        terms = decision_of(decided).approval
        expires_at = None if isinstance(terms, msgspec.UnsetType) else terms.expires_at
        payload = ApprovalRecord(
            decision_id=decision_id,
            created_at=at,
            caller=approver,
            approval=ApprovalAnswer(status, reason, decided.caller, expires_at),
        )
        stored = await self.log.resolve(payload, Resolution(decision_id, status, at, approver))
        return {"decision_id": decision_id, "status": status, "decided_by": approver, **present(stored)}

    async def _decision(self, decision_id: str) -> StoredRecord:
        decided, _ = await self.review.entries(decision_id)
        if decided.execution_status != PENDING_APPROVAL:
            raise NotPending(f"decision {decision_id!r} is {decided.execution_status}: it does not wait for approval")
        return decided

    async def pending_count(self) -> int:
        """How many decisions wait for a person right now (the pending approvals gauge)."""
        count, _ = await self.log.pending_count(now())
        return count

    async def sweep(self) -> int:
        """Expire and escalate every item past its expiry; how many this call expired."""
        expired = 0
        while True:
            due = await self.log.due(now(), SWEEP_BATCH)
            for item in due:
                expired += await self._expire(item)
            if len(due) < SWEEP_BATCH:
                return expired

    async def _expire(self, item: PendingItem) -> int:
        ruleset = await self.review.ruleset_at(decision_of(item.decision))
        escalation = ruleset.escalation_decision if ruleset else None
        autonomy = ruleset.escalation_autonomy if ruleset else "L0"
        at = now()
        reason = f"nobody approved or rejected it by {item.expires_at}"
        payload = ExpiryRecord(
            decision_id=item.decision_id,
            created_at=at,
            caller=EXPIRER,
            approval=ExpiryTerms(
                "EXPIRED", reason, item.requested_by, item.expires_at, True, Escalation(escalation, autonomy)
            ),
        )
        try:
            await self.log.resolve(payload, Resolution(item.decision_id, "EXPIRED", at, EXPIRER))
        except Conflict:  # answered (or expired by another replica) meanwhile
            return 0
        log.warning(
            "decision %s (%s, asked by %s) was not approved by %s: EXPIRED and escalated to %s",
            item.decision_id, item.ruleset, item.requested_by, item.expires_at, escalation,
        )  # fmt: skip
        return 1


async def sweep_forever(approvals: Approvals, interval_s: float) -> None:
    while True:
        try:
            await approvals.sweep()
        except Exception:  # the sweeper must outlive a failed pass (the log briefly unavailable, ...)
            log.exception("approval expiry sweep failed; trying again in %s s", interval_s)
        await asyncio.sleep(interval_s)


@asynccontextmanager
async def sweeping(approvals: Approvals, interval_s: float) -> AsyncIterator[None]:
    """Expire pending approvals every ``interval_s`` beside the app; stop on the way out."""
    async with beside(sweep_forever(approvals, interval_s), "opsgate-approval-sweeper", log):
        yield

"""The decision history of decisions made and executed elsewhere (``/v1/policy/decisions``): recorded
for audit only, chained in the log like every record, as ``external`` records that are never taken for
one of opsgate's own decisions (``/decisions`` does not list them, nor do the dashboard and the queue).
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain.proposed import ExternalDecision
from service.domain.record import DecisionQuery, ExternalRecord, StoredRecord, normalize_time, now
from service.errors import DecisionLogError, InvalidBody, Problem
from service.ports.log import RecordStore
from service.usecases.answer import uuid7
from service.usecases.review import present

KIND = "external"


class DecisionHistory:
    """Record a decision made elsewhere; list those recorded, with the filters of ``/decisions``."""

    def __init__(self, log: RecordStore) -> None:
        self.log = log

    async def record(self, external: ExternalDecision, caller: str) -> dict[str, Any]:
        """Chain ``external`` in the log under a new decision id; the stored record, as /decisions/{id} shows one."""
        payload = ExternalRecord(decision_id=uuid7(), created_at=now(), caller=caller, external=_normalized(external))
        return present(await self.log.append(payload))

    async def query(self, query: DecisionQuery) -> dict[str, Any]:
        """A page of the recorded decisions matching ``query``, newest first, and the cursor of the next."""
        rows, cursor = await self.log.query(query, kind=KIND)
        return {"items": [_summary(row) for row in rows], "next_cursor": cursor}


def _normalized(external: ExternalDecision) -> ExternalDecision:
    """``decided_at`` as the log writes times; 422 naming it when it is not an RFC 3339 time."""
    if external.decided_at is None:
        return external
    try:
        return msgspec.structs.replace(external, decided_at=normalize_time(external.decided_at))
    except ValueError:
        reason = "not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)"
        raise InvalidBody(f"invalid decision: decided_at: {reason}", [Problem(reason, path="decided_at")]) from None


def _summary(stored: StoredRecord) -> dict[str, Any]:
    record = stored.record()
    if not isinstance(record, ExternalRecord):  # the store indexes records by kind: any other is a broken log
        raise DecisionLogError(f"{stored.describe()} is a {record.kind} record, not one recorded from elsewhere")
    external = record.external
    return {
        "decision_id": stored.decision_id,
        "kind": KIND,
        "created_at": stored.created_at,
        "caller": stored.caller,
        "ruleset": stored.ruleset,
        "decision_type": stored.decision_type,
        "confidence": external.confidence,
        "status": stored.execution_status,
        "org_id": stored.org_id,
        "proposer": external.proposer,
        "decided_at": external.decided_at,
        "reference": external.reference,
        "actions": external.actions,
        "log_id": stored.id,
        "hash": stored.hash,
    }

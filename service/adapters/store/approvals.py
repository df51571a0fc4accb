"""The approval queue: decisions pending a person, and how each one ends.

A decision's pending row is written with its record (``records.Chain``); here it is read,
and resolved together with the approval or expiry record that ends it (an EXECUTED one queues
its actions for their executors in the same transaction).
"""

from __future__ import annotations

from typing import Any

from service.adapters.store.bodies import stored
from service.adapters.store.database import Database
from service.adapters.store.records import RECORD_COLUMNS, Chain
from service.domain.record import PENDING, ApprovalRecord, ExpiryRecord, PendingItem, Resolution, StoredRecord
from service.errors import AlreadyDecided, ApprovalExpired, Conflict, NotFound, OpsgateError


class Approvals:
    """The approval queue of a decision log; an ending is chained by ``chain``'s writer."""

    def __init__(self, database: Database, chain: Chain) -> None:
        self.database = database
        self.chain = chain

    async def resolve(self, payload: ApprovalRecord | ExpiryRecord, resolution: Resolution) -> StoredRecord:
        """Append ``payload`` (an approval or expiry record) and resolve its pending approval in the
        same transaction, only if the item is still PENDING and on the right side of its expiry;
        otherwise nothing is written and NotFound, AlreadyDecided, ApprovalExpired or Conflict
        is raised.  Two approvals of one item, from any number of processes: exactly one wins."""
        return await self.database.write(lambda c: self._resolve(c, payload, resolution))

    def _resolve(self, connection: Any, payload: ApprovalRecord | ExpiryRecord, resolution: Resolution) -> StoredRecord:
        seq, prev_hash = self.chain.head(connection)
        refused = self._refusal(connection, resolution)
        if refused is not None:  # nothing written for it: the chain goes on without it
            raise refused
        stored = self.chain.insert(connection, payload, seq + 1, prev_hash)
        if resolution.status == "EXECUTED" and self.chain.actions is not None:  # queued once the approval commits
            self.chain.actions.executed(connection, resolution.decision_id, resolution.by, resolution.at)
        return stored

    def _refusal(self, connection: Any, resolution: Resolution) -> OpsgateError | None:
        """Resolve a PENDING item (a conditional update, so one of two racing approvals wins);
        the reason it cannot be resolved otherwise."""
        sql, wanted = self.database.dialect.sql, resolution.decision_id
        side = "expires_at <= ?" if resolution.status == "EXPIRED" else "expires_at > ?"
        updated = connection.execute(
            sql(
                "UPDATE pending_approvals SET status = ?, resolved_at = ?, resolved_by = ? "
                f"WHERE decision_id = ? AND status = '{PENDING}' AND {side}"
            ),
            (resolution.status, resolution.at, resolution.by, wanted, resolution.at),
        )
        if updated.rowcount == 1:
            return None
        row = connection.execute(
            sql("SELECT status, expires_at, resolved_by FROM pending_approvals WHERE decision_id = ?"), (wanted,)
        ).fetchone()
        if row is None:
            return NotFound(f"decision {wanted!r} is not awaiting approval")
        status, expires_at, resolved_by = (str(row[0]), str(row[1]), row[2])
        if status != PENDING:
            return AlreadyDecided(f"decision {wanted!r} was already decided: {status} by {resolved_by}")
        if resolution.status != "EXPIRED":
            return ApprovalExpired(
                f"decision {wanted!r} expired at {expires_at}: it can no longer be approved or rejected "
                "(it is EXPIRED and escalated)"
            )
        return Conflict(f"decision {wanted!r} does not expire before {expires_at}")

    async def pending(self, at: str, limit: int) -> list[PendingItem]:
        """The items still PENDING and not expired at ``at``, oldest first, with their decisions."""
        return await self.database.read(lambda c: self._pending(c, "p.expires_at > ?", at, limit))

    async def due(self, at: str, limit: int) -> list[PendingItem]:
        """The items still PENDING whose expiry has come at ``at``, oldest first (for the sweeper)."""
        return await self.database.read(lambda c: self._pending(c, "p.expires_at <= ?", at, limit))

    def _pending(self, connection: Any, side: str, at: str, limit: int) -> list[PendingItem]:
        decision_columns = ", ".join(f"e.{name.strip()}" for name in RECORD_COLUMNS.split(","))
        query = (
            f"SELECT p.decision_id, p.ruleset, p.requested_by, p.created_at, p.expires_at, {decision_columns} "
            f"FROM pending_approvals p JOIN log_entries e ON e.id = p.entry_id "
            f"WHERE p.status = '{PENDING}' AND {side} ORDER BY p.created_at, p.entry_id LIMIT {int(limit)}"
        )
        rows = connection.execute(self.database.dialect.sql(query), (at,)).fetchall()
        return [
            PendingItem(str(d), str(rs), str(by), str(created), str(expires), stored(connection, rest))
            for d, rs, by, created, expires, *rest in rows
        ]

    async def pending_count(self, at: str) -> tuple[int, str | None]:
        """How many items are PENDING and not expired at ``at``, and when the oldest was decided."""
        query = self.database.dialect.sql(
            f"SELECT COUNT(*), MIN(created_at) FROM pending_approvals WHERE status = '{PENDING}' AND expires_at > ?"
        )
        count, oldest = await self.database.read(lambda c: c.execute(query, (at,)).fetchone())
        return int(count), (None if oldest is None else str(oldest))

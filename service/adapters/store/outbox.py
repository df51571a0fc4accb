"""The outbox of approved actions: queued with the record (or approval) that approves them, settled once.

``ActionQueue`` runs inside the writer's transaction (``records.Chain`` for a decision APPROVED at
once, ``approvals.Approvals`` for one a person EXECUTED): each action whose type has an executor
gets a row, so an action is queued exactly when its approval is committed, never before, never
without it.  ``Outbox`` is what the delivery loop reads and settles: a row leaves PENDING once,
together with the outcome record chained for it, so a delivery repeated after a crash records
no second outcome.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.adapters.store.bodies import decoded
from service.adapters.store.database import Database, Dialect
from service.domain.record import DecisionRecord, OutcomeRecord, canonical
from service.ports.executors import OUTBOX_STATES, OutboxItem, OutboxState

_COLUMNS = "decision_id, action_index, action_type, body, attempts, state, last_error, next_at, settled_at"
_DECISION = msgspec.json.Decoder(DecisionRecord)


class ActionQueue:
    """Queues the actions of approved decisions whose type has an executor (``types``), in the caller's transaction."""

    def __init__(self, dialect: Dialect, writer: str, types: frozenset[str]) -> None:
        self.dialect = dialect
        self.writer = writer
        self.types = types

    def decided(self, connection: Any, record: DecisionRecord, approved_by: str | None = None) -> None:
        """Queue ``record``'s execution actions (it was APPROVED, or ``approved_by`` a person)."""
        rows = [
            self._row(record, index, action, approved_by)
            for index, action in enumerate(record.execution.actions)
            if action.get("type") in self.types
        ]
        if rows:
            connection.cursor().executemany(
                self.dialect.sql(
                    "INSERT INTO action_outbox (decision_id, action_index, writer, action_type, body, state, attempts, "
                    "next_at, created_at) VALUES (?, ?, ?, ?, ?, 'PENDING', 0, ?, ?) "
                    "ON CONFLICT (decision_id, action_index) DO NOTHING"
                ),
                rows,
            )

    def executed(self, connection: Any, decision_id: str, approved_by: str, at: str) -> None:
        """Queue the actions of the decision a person just EXECUTED (read back in the same transaction)."""
        row = connection.execute(
            self.dialect.sql("SELECT body FROM log_entries WHERE decision_id = ? AND kind = 'decision'"), (decision_id,)
        ).fetchone()
        if row is not None:
            record = _DECISION.decode(decoded(connection, row[0]))  # a compressed body too
            self.decided(connection, msgspec.structs.replace(record, created_at=at), approved_by)

    def _row(
        self, record: DecisionRecord, index: int, action: dict[str, Any], approved_by: str | None
    ) -> tuple[Any, ...]:
        body = {
            "idempotency_key": f"{record.decision_id}:{index}",
            "decision_id": record.decision_id,
            "action_index": index,
            "action": action,
            "ruleset": record.ruleset.name,
            "ruleset_version": record.ruleset.version,
            "decision_type": record.decision.decision_type,
            "requested_by": record.caller,
            "approved_by": approved_by,
        }
        return (record.decision_id, index, self.writer, str(action["type"]), canonical(body),
                record.created_at, record.created_at)  # fmt: skip


class Outbox:
    """This writer's outbox as the delivery loop reads and settles it (``service.ports.executors.Outbox``)."""

    def __init__(self, database: Database, writer: str, append: Any) -> None:
        self.database = database
        self.writer = writer
        self._append = append  # the chain's append: (connection, [records]) -> stored, in the same transaction

    async def due(self, at: str, limit: int) -> list[OutboxItem]:
        query = self.database.dialect.sql(
            f"SELECT {_COLUMNS} FROM action_outbox WHERE writer = ? AND state = 'PENDING' AND next_at <= ? "
            f"ORDER BY next_at, decision_id, action_index LIMIT {int(limit)}"
        )
        rows = await self.database.read(lambda c: c.execute(query, (self.writer, at)).fetchall())
        return [_item(row) for row in rows]

    async def settle(self, item: OutboxItem, state: OutboxState, outcome: OutcomeRecord, at: str) -> bool:
        (settled,) = await self.database.write_together(self._settle, [(item, state, outcome, at)])
        return bool(settled)

    def _settle(self, connection: Any, items: list[tuple[OutboxItem, OutboxState, OutcomeRecord, str]]) -> list[bool]:
        done = []
        for item, state, outcome, at in items:
            updated = connection.execute(
                self.database.dialect.sql(
                    "UPDATE action_outbox SET state = ?, attempts = attempts + 1, settled_at = ?, last_error = ? "
                    "WHERE decision_id = ? AND action_index = ? AND state = 'PENDING'"
                ),
                (state, at, item.last_error if state == "DELIVERED" else outcome.outcome.detail, item.decision_id,
                 item.action_index),
            )  # fmt: skip
            done.append(updated.rowcount == 1)
            if done[-1]:
                self._append(connection, [outcome])
        return done

    async def retry(self, item: OutboxItem, error: str, next_at: str) -> None:
        await self.database.write_together(self._retry, [(item, error, next_at)])

    def _retry(self, connection: Any, items: list[tuple[OutboxItem, str, str]]) -> list[None]:
        sql = self.database.dialect.sql(
            "UPDATE action_outbox SET attempts = attempts + 1, last_error = ?, next_at = ? "
            "WHERE decision_id = ? AND action_index = ? AND state = 'PENDING'"
        )
        for item, error, next_at in items:
            connection.execute(sql, (error, next_at, item.decision_id, item.action_index))
        return [None] * len(items)

    async def counts(self) -> dict[str, int]:
        query = "SELECT state, COUNT(*) FROM action_outbox GROUP BY state"
        rows = await self.database.read(lambda c: c.execute(query).fetchall())
        found = {str(state): int(count) for state, count in rows}
        return {state: found.get(state, 0) for state in OUTBOX_STATES}

    async def of_decision(self, decision_id: str) -> list[OutboxItem]:
        query = self.database.dialect.sql(
            f"SELECT {_COLUMNS} FROM action_outbox WHERE decision_id = ? ORDER BY action_index"
        )
        rows = await self.database.read(lambda c: c.execute(query, (decision_id,)).fetchall())
        return [_item(row) for row in rows]


def _item(row: Any) -> OutboxItem:
    decision_id, index, action_type, body, attempts, state, error, next_at, settled_at = row
    return OutboxItem(str(decision_id), int(index), str(action_type), str(body), int(attempts), str(state),
                      error, None if state != "PENDING" else str(next_at), settled_at)  # fmt: skip

"""The decision log's records: one hash chain per writer, appended through the database's writer.

A decision pending approval gets its row in the approval queue in the same transaction as its
record, so the queue never names a decision the log does not hold; an APPROVED one gets its
actions queued for their executors the same way (``outbox.ActionQueue``, when executors are
configured).
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.adapters.store.bodies import Encoder, stored
from service.adapters.store.database import Database, Dialect
from service.adapters.store.outbox import ActionQueue
from service.domain.approval import approval_expires_at
from service.domain.decision import APPROVED, PENDING_APPROVAL
from service.domain.record import (
    GENESIS,
    PENDING,
    DecisionQuery,
    DecisionRecord,
    Head,
    Record,
    StoredRecord,
    canonical,
    chain_hash,
    columns,
    normalize_time,
)

RECORD_COLUMNS = ("id, writer, seq, body, prev_hash, hash, kind, decision_id, created_at, caller, ruleset, "
                  "ruleset_version, bundle_revision, decision_type, execution_status, org_id")  # fmt: skip

KINDS_QUERIED = ("decision", "external")  # opsgate's own decisions, and those recorded from elsewhere

_INSERT = (
    "INSERT INTO log_entries (writer, seq, kind, decision_id, created_at, caller, ruleset, ruleset_version, "
    "bundle_revision, decision_type, execution_status, org_id, body, prev_hash, hash, latency_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


class Chain:
    """One writer's chain, written inside the writer thread's transaction."""

    def __init__(self, dialect: Dialect, writer: str, actions: ActionQueue | None = None) -> None:
        self.dialect = dialect
        self.writer = writer
        self.bodies = Encoder(dialect.name)
        self.actions = actions  # None: no executors, nothing queued

    def head(self, connection: Any) -> tuple[int, str]:
        """Lock the chain for this transaction; its last seq and hash (0 and GENESIS when empty)."""
        self.dialect.lock_chain(connection, self.writer)
        head = connection.execute(
            self.dialect.sql("SELECT seq, hash FROM log_entries WHERE writer = ? ORDER BY seq DESC LIMIT 1"),
            (self.writer,),
        ).fetchone()
        return (int(head[0]), str(head[1])) if head else (0, GENESIS)

    def append(self, connection: Any, payloads: list[Record]) -> list[StoredRecord]:
        """Chain ``payloads`` in order after the head (the writer's work for ``Records``)."""
        seq, prev_hash = self.head(connection)
        stored = []
        for payload in payloads:
            stored.append(self.insert(connection, payload, seq + 1, prev_hash))
            seq, prev_hash = stored[-1].seq, stored[-1].hash
        return stored

    def insert(self, connection: Any, payload: Record, seq: int, prev_hash: str) -> StoredRecord:
        """Write ``payload`` as record ``seq`` of the chain, after ``prev_hash``, with its indexes."""
        record = msgspec.structs.replace(payload, writer=self.writer, seq=seq)
        body = canonical(record)
        digest = chain_hash(prev_hash, body)
        cols = columns(record)
        values = (self.writer, seq, cols.kind, cols.decision_id, cols.created_at, cols.caller, cols.ruleset,
                  cols.ruleset_version, cols.bundle_revision, cols.decision_type, cols.execution_status,
                  cols.org_id, self.bodies.encode(connection, cols.kind, (cols.ruleset, cols.ruleset_version), body),
                  prev_hash, digest, cols.latency_ms)  # fmt: skip
        entry_id = int(connection.execute(self.dialect.sql(_INSERT), values).fetchone()[0])
        self._index(connection, entry_id, cols.fired, cols.denied)
        if isinstance(record, DecisionRecord) and cols.execution_status == PENDING_APPROVAL:
            self._queue_approval(connection, entry_id, record, cols.caller)
        elif isinstance(record, DecisionRecord) and cols.execution_status == APPROVED and self.actions is not None:
            self.actions.decided(connection, record)
        return StoredRecord(entry_id, self.writer, seq, body, prev_hash, digest, *values[2:12])

    def _index(self, connection: Any, entry_id: int, fired: Any, denied: Any) -> None:
        sql = self.dialect.sql
        cursor = connection.cursor()
        if fired:
            cursor.executemany(
                sql("INSERT INTO log_fired (entry_id, rule_id, won) VALUES (?, ?, ?)"),
                [(entry_id, rule, int(won)) for rule, won in fired],
            )
        if denied:
            cursor.executemany(
                sql("INSERT INTO log_denied (entry_id, policy, violation_id) VALUES (?, ?, ?)"),
                [(entry_id, policy, vid) for policy, vid in denied],
            )

    def _queue_approval(self, connection: Any, entry_id: int, record: DecisionRecord, requested_by: str) -> None:
        """The pending row of a decision that waits for a person, written with its record."""
        connection.execute(
            self.dialect.sql(
                "INSERT INTO pending_approvals (decision_id, entry_id, ruleset, requested_by, created_at, "
                "expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (record.decision_id, entry_id, record.ruleset.name, requested_by, record.created_at,
             approval_expires_at(record), PENDING),
        )  # fmt: skip


class Records:
    """The records store: append to this writer's chain, and read any chain."""

    def __init__(self, database: Database, writer: str, action_types: frozenset[str] = frozenset()) -> None:
        self.database = database
        actions = ActionQueue(database.dialect, writer, action_types) if action_types else None
        self.chain = Chain(database.dialect, writer, actions)

    @property
    def writer(self) -> str:
        return self.chain.writer

    async def append(self, payload: Record) -> StoredRecord:
        """Chain and commit one record; returns it once it is durable."""
        return (await self.append_many([payload]))[0]

    async def append_many(self, payloads: list[Record]) -> list[StoredRecord]:
        """Chain and commit ``payloads`` together, in one transaction; returns them once durable."""
        return await self.database.write_together(self.chain.append, payloads)

    async def get(self, decision_id: str) -> list[StoredRecord]:
        """The decision's record followed by its outcomes, oldest first; empty when unknown."""
        return await self.database.read(lambda c: self._records(c, "decision_id = ?", (decision_id,), "ORDER BY id"))

    async def get_many(self, decision_ids: list[str]) -> list[StoredRecord]:
        """Every record about any of ``decision_ids``, oldest first."""
        if not decision_ids:
            return []
        where = f"decision_id IN ({', '.join('?' for _ in decision_ids)})"
        return await self.database.read(lambda c: self._records(c, where, tuple(decision_ids), "ORDER BY id"))

    async def query(self, query: DecisionQuery, kind: str = "decision") -> tuple[list[StoredRecord], str | None]:
        """Decisions matching every filter (``status``: the current status), newest first, and the
        cursor of the next page; ``kind="external"``: the decisions recorded from elsewhere instead."""
        where, params = _filters(query, current_status_sql(self.database.dialect), kind)
        tail = f"ORDER BY id DESC LIMIT {int(query.limit) + 1}"
        rows = await self.database.read(lambda c: self._records(c, where, params, tail))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return rows, (str(rows[-1].id) if more and rows else None)

    async def heads(self) -> list[Head]:
        """The last record of every chain, by writer."""
        query = (
            "SELECT writer, seq, hash, created_at FROM log_entries WHERE (writer, seq) IN "
            "(SELECT writer, MAX(seq) FROM log_entries GROUP BY writer) ORDER BY writer"
        )
        rows = await self.database.read(lambda c: c.execute(query).fetchall())
        return [Head(str(w), int(s), str(h), str(t)) for w, s, h, t in rows]

    def _records(self, connection: Any, where: str, params: tuple[Any, ...], tail: str = "") -> list[StoredRecord]:
        query = f"SELECT {RECORD_COLUMNS} FROM log_entries WHERE {where} {tail}"
        rows = connection.execute(self.database.dialect.sql(query), params).fetchall()
        return [stored(connection, row) for row in rows]


def current_status_sql(dialect: Dialect, entry: str = "log_entries") -> str:
    """SQL of the current status of the decision row ``entry``: the status of the latest record about
    it (an approval's, an expiry's, an outcome's), else its own (``service.usecases.status``)."""
    return (
        f"COALESCE((SELECT {dialect.later_status} FROM log_entries about WHERE about.decision_id = "
        f"{entry}.decision_id AND about.kind <> 'decision' ORDER BY about.id DESC LIMIT 1), {entry}.execution_status)"
    )


def _filters(query: DecisionQuery, current: str, kind: str) -> tuple[str, tuple[Any, ...]]:
    if kind not in KINDS_QUERIED:
        raise ValueError(f"records of kind {kind!r} are not queried")
    clauses, params = [f"kind = '{kind}'"], []  # a literal, as the query planner best reads it
    simple = (
        ("created_at >= ?", normalize_time(query.since) if query.since else None),
        ("created_at < ?", normalize_time(query.until) if query.until else None),
        ("ruleset = ?", query.ruleset),
        ("decision_type = ?", query.decision_type),
        (f"{current} = ?", query.status),
        ("org_id = ?", query.org_id),
        ("caller = ?", query.caller),
        ("id IN (SELECT entry_id FROM log_fired WHERE rule_id = ?)", query.rule),
        ("id < ?", int(query.cursor) if query.cursor else None),
    )
    for clause, value in simple:
        if value is not None and value != "":
            clauses.append(clause)
            params.append(value)
    if query.denied_by:
        clauses.append("id IN (SELECT entry_id FROM log_denied WHERE policy = ? OR violation_id = ?)")
        params.extend([query.denied_by, query.denied_by])
    return " AND ".join(clauses), tuple(params)

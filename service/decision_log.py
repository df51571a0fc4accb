"""The decision log: the only module that touches its storage (SQLite, WAL).

Records are appended by one writer thread that groups whatever is waiting into
one transaction, so concurrent requests share a commit (and its fsync).  A
caller's ``append`` returns only after its record is committed: an answered
decision is never missing from the log.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgspec

from service.errors import DecisionLogError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id      TEXT NOT NULL UNIQUE,
    created_at       TEXT NOT NULL,
    caller           TEXT NOT NULL,
    ruleset          TEXT NOT NULL,
    ruleset_version  TEXT NOT NULL,
    bundle_revision  TEXT NOT NULL,
    decision_type    TEXT NOT NULL,
    execution_status TEXT NOT NULL,
    request          TEXT NOT NULL,
    response         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_created_at ON decisions (created_at);
"""

_INSERT = """
INSERT INTO decisions (decision_id, created_at, caller, ruleset, ruleset_version, bundle_revision,
                       decision_type, execution_status, request, response)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

MAX_GROUP = 512


class LogRecord(msgspec.Struct, frozen=True):
    decision_id: str
    created_at: str  # RFC 3339, UTC
    caller: str
    ruleset: str
    ruleset_version: str
    bundle_revision: str
    decision_type: str
    execution_status: str
    request: str  # the facts as received, JSON
    response: str  # the answer as sent (without its own log id), JSON

    def row(self) -> tuple[str, ...]:
        return msgspec.structs.astuple(self)


_STOP = object()


class SqliteDecisionLog:
    """Append-only decision log in one SQLite file, with group commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._writer, name="opsgate-log-writer", daemon=True)
        self._thread.start()
        self._ready.result()  # surfaces a bad path or a locked file at start

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # durable before the answer
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    async def append(self, record: LogRecord) -> int:
        """Commit ``record``; returns its sequence number once it is durable."""
        done: Future[int] = Future()
        self._queue.put((record, done))
        return await asyncio.wrap_future(done)

    def _writer(self) -> None:
        try:
            connection = self._connect()
            connection.executescript(_SCHEMA)
        except sqlite3.Error as error:
            self._ready.set_exception(DecisionLogError(f"cannot open decision log {self.path}: {error}"))
            return
        self._ready.set_result(None)
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            items = [item for item in group if item is not _STOP]
            if items:
                self._commit(connection, items)
            if len(items) != len(group):
                connection.close()
                return

    def _commit(self, connection: sqlite3.Connection, items: list[tuple[LogRecord, Future[int]]]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            seqs = [connection.execute(_INSERT, record.row()).lastrowid or 0 for record, _ in items]
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            for _, done in items:
                done.set_exception(DecisionLogError(f"decision log write failed: {error}"))
            return
        for (_, done), seq in zip(items, seqs, strict=True):
            done.set_result(seq)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)

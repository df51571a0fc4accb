"""The decision log's storage: the only module that talks to SQLite or PostgreSQL.

One class serves both; a small ``Dialect`` holds what differs (connecting, the
DDL, how a writer locks its chain).  Appends go through one writer thread that
takes whatever is waiting and commits it as one transaction (group commit):
concurrent requests share a commit and its fsync, and ``append`` returns only
once its record is durable.  Reads run on a small pool of threads, each with
its own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from service.domain.chain import Index, VerifyReport, verify, verify_versions
from service.domain.decision import PENDING_APPROVAL
from service.domain.record import (
    GENESIS,
    PENDING,
    ApprovalRecord,
    DecisionQuery,
    DecisionRecord,
    ExpiryRecord,
    Head,
    PendingItem,
    Record,
    Resolution,
    StoredRecord,
    VersionFile,
    VersionInfo,
    WindowStats,
    canonical,
    chain_hash,
    columns,
    later,
    normalize_time,
    now,
)
from service.domain.ruleset import DEFAULT_APPROVAL_EXPIRY_S
from service.errors import AlreadyDecided, ApprovalExpired, Conflict, DecisionLogError, NotFound, OpsgateError

T = TypeVar("T")
MAX_GROUP = 512
#: How long a signed-out session's row outlives its expiry: replicas' clocks may disagree this much.
PRUNE_MARGIN_S = 300
_Item = tuple[Record, "Future[StoredRecord]", Resolution | None]

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_entries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    writer           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    decision_id      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    caller           TEXT NOT NULL,
    ruleset          TEXT,
    ruleset_version  TEXT,
    bundle_revision  TEXT,
    decision_type    TEXT,
    execution_status TEXT,
    org_id           TEXT,
    body             TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    UNIQUE (writer, seq)
);
CREATE TABLE IF NOT EXISTS log_fired (entry_id INTEGER NOT NULL, rule_id TEXT NOT NULL, won INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_denied (entry_id INTEGER NOT NULL, policy TEXT NOT NULL, violation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, content BLOB NOT NULL);
"""

_POSTGRES_SCHEMA = (
    _SQLITE_SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    .replace("entry_id INTEGER", "entry_id BIGINT")
    .replace("BLOB", "BYTEA")
)

_COMMON_SCHEMA = """
CREATE UNIQUE INDEX IF NOT EXISTS log_entries_one_decision ON log_entries (decision_id) WHERE kind = 'decision';
CREATE INDEX IF NOT EXISTS log_entries_decision_id ON log_entries (decision_id);
CREATE INDEX IF NOT EXISTS log_entries_created_at ON log_entries (created_at);
CREATE INDEX IF NOT EXISTS log_fired_rule ON log_fired (rule_id, entry_id);
CREATE INDEX IF NOT EXISTS log_denied_policy ON log_denied (policy, entry_id);
CREATE INDEX IF NOT EXISTS log_denied_id ON log_denied (violation_id, entry_id);
CREATE TABLE IF NOT EXISTS versions (
    version         TEXT PRIMARY KEY,
    first_loaded_at TEXT NOT NULL,
    last_loaded_at  TEXT NOT NULL,
    loads           INTEGER NOT NULL,
    rulesets        TEXT NOT NULL,
    git             TEXT
);
CREATE TABLE IF NOT EXISTS pending_approvals (
    decision_id  TEXT PRIMARY KEY,
    entry_id     BIGINT NOT NULL,
    ruleset      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    status       TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT
);
CREATE INDEX IF NOT EXISTS pending_approvals_open ON pending_approvals (status, created_at);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    sid        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
CREATE TABLE IF NOT EXISTS version_files (
    version TEXT NOT NULL,
    path    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (version, path)
);
"""

_RECORD_COLUMNS = ("id, writer, seq, body, prev_hash, hash, kind, decision_id, created_at, caller, ruleset, "
                   "ruleset_version, bundle_revision, decision_type, execution_status, org_id")  # fmt: skip

_INSERT = (
    "INSERT INTO log_entries (writer, seq, kind, decision_id, created_at, caller, ruleset, ruleset_version, "
    "bundle_revision, decision_type, execution_status, org_id, body, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


class Dialect:
    name = "sqlite"
    schema = _SQLITE_SCHEMA + _COMMON_SCHEMA
    begin_write = "BEGIN IMMEDIATE"  # takes the write lock now: the chain head read below is current

    def __init__(self, target: str) -> None:
        self.target = target

    def connect(self) -> Any:
        path = Path(self.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # durable before the answer
        connection.execute("PRAGMA busy_timeout=10000")
        return connection

    def connect_read_only(self) -> Any:
        """A connection that cannot change the file (no journal mode set, nothing created)."""
        return sqlite3.connect(f"{Path(self.target).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)

    def sql(self, text: str) -> str:
        return text

    def lock_chain(self, connection: Any, writer: str) -> None:
        """Serialise writers of one chain; BEGIN IMMEDIATE already did in SQLite."""

    def create_schema(self, connection: Any) -> None:
        connection.executescript(self.schema)

    def broken(self, error: Exception) -> bool:
        return False

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    latency = "CAST(json_extract(body, '$.latency_ms.total') AS REAL)"  # a decision's end-to-end ms


class PostgresDialect(Dialect):
    name = "postgresql"
    schema = _POSTGRES_SCHEMA + _COMMON_SCHEMA
    # the head is read after the advisory lock is granted; a snapshot taken earlier would be stale
    begin_write = "BEGIN ISOLATION LEVEL READ COMMITTED"

    def __init__(self, target: str) -> None:
        super().__init__(target)
        import psycopg

        self.psycopg = psycopg
        self.errors = (psycopg.Error,)

    def connect(self) -> Any:
        return self.psycopg.connect(self.target, autocommit=True, connect_timeout=10)

    def connect_read_only(self) -> Any:
        """A connection whose transactions are read-only, keeping the URL's own options (search_path...)."""
        options = self.psycopg.conninfo.conninfo_to_dict(self.target).get("options") or ""
        options = f"{options} -c default_transaction_read_only=on".strip()
        return self.psycopg.connect(self.target, autocommit=True, connect_timeout=10, options=options)

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def lock_chain(self, connection: Any, writer: str) -> None:
        # two processes configured with the same writer id still append one after the other
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"opsgate-chain:{writer}",))

    def create_schema(self, connection: Any) -> None:
        connection.execute("SELECT pg_advisory_lock(hashtext('opsgate-schema'))")
        try:
            for statement in filter(str.strip, self.schema.split(";")):
                connection.execute(statement)
        finally:
            connection.execute("SELECT pg_advisory_unlock(hashtext('opsgate-schema'))")

    def broken(self, error: Exception) -> bool:
        return isinstance(error, self.psycopg.OperationalError)

    latency = "((body::jsonb) -> 'latency_ms' ->> 'total')::double precision"


def dialect_for(db: str) -> Dialect:
    if db.startswith(("postgresql://", "postgres://")):
        return PostgresDialect(db)
    if "://" in db:
        raise OpsgateError(f"unsupported decision log {db!r}: use a SQLite file path or a postgresql:// URL")
    return Dialect(db.removeprefix("sqlite:"))


_STOP = object()
_UNLOGGED = StoredRecord(0, "", 0, "", "", "", "", "", "", "", None, None, None, None, None, None)  # bench only


def public_url(url: str) -> str:
    """A PostgreSQL URL as /ready may show it: host, port and database only.  The user info and the
    whole query string are dropped (``?password=``, ``sslpassword``, ``passfile``... carry secrets)."""
    parts = urlsplit(url)
    return f"postgresql://{parts.netloc.rpartition('@')[2]}{parts.path}"


class SqlDecisionLog:
    """The append-only, hash-chained decision log in SQLite or PostgreSQL."""

    def __init__(self, db: str, writer: str, *, bench_log_off: bool = False, read_only: bool = False) -> None:
        """``read_only``: the log at ``db`` must exist (else NotFound) and nothing is created or
        written: no schema, no writer thread; appending raises."""
        self.dialect = require_log(db) if read_only else dialect_for(db)
        self.writer = writer
        self.read_only = read_only
        self._connect = self.dialect.connect_read_only if read_only else self.dialect.connect
        # BENCHMARK ONLY (bench/run.py's log-off row, issue 6): answer without writing anything.
        # Never set it in production: decisions would go unrecorded.
        self._bench_log_off = bench_log_off
        self._queue: queue.Queue[Any] = queue.Queue()
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="opsgate-log-reader")
        self._connections: list[Any] = []
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._writer, name="opsgate-log-writer", daemon=True)
        if not read_only:
            self._thread.start()
            self._ready.result()  # surfaces a bad path, a refused connection or a locked file at start

    @property
    def description(self) -> str:
        off = " (OFF: OPSGATE_BENCH_LOG_OFF, nothing is written)" if self._bench_log_off else ""
        if self.dialect.name == "sqlite":
            return f"sqlite:{self.dialect.target}{off}"
        return public_url(self.dialect.target) + off

    # --- writing ------------------------------------------------------------------

    async def append(self, payload: Record) -> StoredRecord:
        """Chain and commit one record; returns it once it is durable."""
        return (await self.append_many([payload]))[0]

    async def append_many(self, payloads: list[Record]) -> list[StoredRecord]:
        """Chain and commit ``payloads`` together, in one transaction; returns them once durable."""
        if self._bench_log_off:
            return [_UNLOGGED] * len(payloads)
        self._require_writable()
        items: list[_Item] = [(payload, Future(), None) for payload in payloads]
        self._queue.put(items)  # one queue entry, so the writer cannot split it across commits
        return list(await asyncio.gather(*(asyncio.wrap_future(done) for _, done, _ in items)))

    async def resolve(self, payload: ApprovalRecord | ExpiryRecord, resolution: Resolution) -> StoredRecord:
        """Append ``payload`` (an approval or expiry record) and resolve its pending approval in the
        same transaction, only if the item is still PENDING and on the right side of its expiry;
        otherwise nothing is written and NotFound, AlreadyDecided, ApprovalExpired or Conflict
        is raised.  Two approvals of one item, from any number of processes: exactly one wins."""
        self._require_writable()
        done: Future[StoredRecord] = Future()
        self._queue.put([(payload, done, resolution)])
        return await asyncio.wrap_future(done)

    def _require_writable(self) -> None:
        if self.read_only:
            raise DecisionLogError(f"decision log {self.description} is open read-only")

    def _writer(self) -> None:
        try:
            connection = self.dialect.connect()
            self.dialect.create_schema(connection)
        except Exception as error:  # noqa: BLE001 - any driver error is reported the same way
            self._ready.set_exception(DecisionLogError(f"cannot open decision log {self.description}: {error}"))
            return
        self._ready.set_result(None)
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            items = [one for entry in group if entry is not _STOP for one in entry]
            appends = [item for item in items if item[2] is None]
            if appends:
                connection = self._commit(connection, appends)
            # each approval or expiry in a transaction of its own: one that is refused, or that two
            # replicas' groups would lock in opposite orders, never fails the group's decisions
            for item in items:
                if item[2] is not None:
                    connection = self._commit(connection, [item])
            if any(entry is _STOP for entry in group):
                connection.close()
                return

    def _commit(self, connection: Any, items: list[_Item]) -> Any:
        for attempt in (1, 2):
            committing = False
            try:
                connection.execute(self.dialect.begin_write)
                stored = self._write(connection, [(payload, resolution) for payload, _, resolution in items])
                committing = True
                connection.execute("COMMIT")
                break
            except Exception as error:  # noqa: BLE001 - the writer thread must outlive any one bad group
                connection = self._recover(connection, error)
                # a connection lost before COMMIT wrote nothing: try once more on a new one.  Lost
                # during COMMIT, the outcome is unknown, so the callers are told it failed.
                if attempt == 1 and not committing and self.dialect.broken(error):
                    continue
                failure = DecisionLogError(f"decision log write failed: {error}")
                for _, done, _ in items:
                    if done.set_running_or_notify_cancel():
                        done.set_exception(failure)
                return connection
        for (_, done, _), record in zip(items, stored, strict=True):
            # a caller that went away (its request cancelled) still has its record logged
            if not done.set_running_or_notify_cancel():
                continue
            if isinstance(record, OpsgateError):
                done.set_exception(record)
            else:
                done.set_result(record)
        return connection

    def _write(
        self, connection: Any, entries: list[tuple[Record, Resolution | None]]
    ) -> list[StoredRecord | OpsgateError]:
        sql = self.dialect.sql
        self.dialect.lock_chain(connection, self.writer)
        head = connection.execute(
            sql("SELECT seq, hash FROM log_entries WHERE writer = ? ORDER BY seq DESC LIMIT 1"), (self.writer,)
        ).fetchone()
        seq, prev_hash = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        stored: list[StoredRecord | OpsgateError] = []
        for payload, resolution in entries:
            refused = None if resolution is None else self._resolve(connection, resolution)
            if refused is not None:  # nothing written for it: the chain goes on without it
                stored.append(refused)
                continue
            seq += 1
            record = msgspec.structs.replace(payload, writer=self.writer, seq=seq)
            body = canonical(record)
            digest = chain_hash(prev_hash, body)
            cols = columns(record)
            values = (self.writer, seq, cols.kind, cols.decision_id, cols.created_at, cols.caller, cols.ruleset,
                      cols.ruleset_version, cols.bundle_revision, cols.decision_type, cols.execution_status,
                      cols.org_id, body, prev_hash, digest)  # fmt: skip
            entry_id = int(connection.execute(sql(_INSERT), values).fetchone()[0])
            self._index(connection, entry_id, cols.fired, cols.denied)
            if isinstance(record, DecisionRecord) and cols.execution_status == PENDING_APPROVAL:
                self._queue_approval(connection, entry_id, record, cols.caller)
            stored.append(StoredRecord(entry_id, self.writer, seq, body, prev_hash, digest, *values[2:12]))
            prev_hash = digest
        return stored

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
        # a record without approval terms (not written by the pipeline) waits the default hour
        terms = record.approval
        default = later(record.created_at, DEFAULT_APPROVAL_EXPIRY_S)
        expires_at = default if isinstance(terms, msgspec.UnsetType) else terms.expires_at
        connection.execute(
            self.dialect.sql(
                "INSERT INTO pending_approvals (decision_id, entry_id, ruleset, requested_by, created_at, "
                "expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (record.decision_id, entry_id, record.ruleset.name, requested_by, record.created_at,
             normalize_time(expires_at), PENDING),
        )  # fmt: skip

    def _resolve(self, connection: Any, resolution: Resolution) -> OpsgateError | None:
        """Resolve a PENDING item (a conditional update, so one of two racing approvals wins);
        the reason it cannot be resolved otherwise."""
        sql, wanted = self.dialect.sql, resolution.decision_id
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

    def _recover(self, connection: Any, error: Exception) -> Any:
        with contextlib.suppress(*self.dialect.errors):
            connection.execute("ROLLBACK")
        if not self.dialect.broken(error):
            return connection
        try:
            connection.close()
            return self.dialect.connect()
        except self.dialect.errors:
            return connection  # still down: the next group fails and tries again

    # --- reading ------------------------------------------------------------------

    async def _read(self, work: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run, work)

    def _run(self, work: Callable[[Any], T]) -> T:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            self._connections.append(connection)
        try:
            return work(connection)
        except self.dialect.errors as error:
            if self.dialect.broken(error):
                self._local.connection = None
            raise DecisionLogError(f"decision log read failed: {error}") from error

    def _records(self, connection: Any, where: str, params: tuple[Any, ...], tail: str = "") -> list[StoredRecord]:
        query = f"SELECT {_RECORD_COLUMNS} FROM log_entries WHERE {where} {tail}"
        rows = connection.execute(self.dialect.sql(query), params).fetchall()
        return [StoredRecord(*row) for row in rows]

    async def get(self, decision_id: str) -> list[StoredRecord]:
        """The decision's record followed by its outcomes, oldest first; empty when unknown."""
        return await self._read(lambda c: self._records(c, "decision_id = ?", (decision_id,), "ORDER BY id"))

    async def query(self, query: DecisionQuery) -> tuple[list[StoredRecord], str | None]:
        """Decisions matching every filter, newest first, and the cursor of the next page."""
        where, params = _filters(query)
        tail = f"ORDER BY id DESC LIMIT {int(query.limit) + 1}"
        rows = await self._read(lambda c: self._records(c, where, params, tail))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return rows, (str(rows[-1].id) if more and rows else None)

    async def heads(self) -> list[Head]:
        query = (
            "SELECT writer, seq, hash, created_at FROM log_entries WHERE (writer, seq) IN "
            "(SELECT writer, MAX(seq) FROM log_entries GROUP BY writer) ORDER BY writer"
        )
        rows = await self._read(lambda c: c.execute(query).fetchall())
        return [Head(str(w), int(s), str(h), str(t)) for w, s, h, t in rows]

    # --- pending approvals ------------------------------------------------------------

    async def pending(self, at: str, limit: int) -> list[PendingItem]:
        """The items still PENDING and not expired at ``at``, oldest first, with their decisions."""
        return await self._read(lambda c: self._pending(c, "p.expires_at > ?", at, limit))

    async def due(self, at: str, limit: int) -> list[PendingItem]:
        """The items still PENDING whose expiry has come at ``at``, oldest first (for the sweeper)."""
        return await self._read(lambda c: self._pending(c, "p.expires_at <= ?", at, limit))

    def _pending(self, connection: Any, side: str, at: str, limit: int) -> list[PendingItem]:
        decision_columns = ", ".join(f"e.{name.strip()}" for name in _RECORD_COLUMNS.split(","))
        query = (
            f"SELECT p.decision_id, p.ruleset, p.requested_by, p.created_at, p.expires_at, {decision_columns} "
            f"FROM pending_approvals p JOIN log_entries e ON e.id = p.entry_id "
            f"WHERE p.status = '{PENDING}' AND {side} ORDER BY p.created_at, p.entry_id LIMIT {int(limit)}"
        )
        rows = connection.execute(self.dialect.sql(query), (at,)).fetchall()
        return [
            PendingItem(str(d), str(rs), str(by), str(created), str(expires), StoredRecord(*rest))
            for d, rs, by, created, expires, *rest in rows
        ]

    async def pending_count(self, at: str) -> tuple[int, str | None]:
        """How many items are PENDING and not expired at ``at``, and when the oldest was decided."""
        query = self.dialect.sql(
            f"SELECT COUNT(*), MIN(created_at) FROM pending_approvals WHERE status = '{PENDING}' AND expires_at > ?"
        )
        count, oldest = await self._read(lambda c: c.execute(query, (at,)).fetchone())
        return int(count), (None if oldest is None else str(oldest))

    # --- signed-out sessions ------------------------------------------------------------

    async def revoke_session(self, sid: str, expires: int) -> None:
        """Refuse session ``sid`` until ``expires`` (epoch seconds).  The rows more than
        PRUNE_MARGIN_S past their expiry are deleted in the same transaction: the table holds the
        sign-outs of one session TTL, and a replica whose clock runs behind still finds its rows."""
        self._require_writable()
        await self._read(lambda c: self._revoke(c, sid, expires, int(time.time())))

    def _revoke(self, connection: Any, sid: str, expires: int, at: int) -> None:
        sql = self.dialect.sql
        connection.execute(self.dialect.begin_write)
        try:
            connection.execute(sql("DELETE FROM revoked_sessions WHERE expires_at < ?"), (at - PRUNE_MARGIN_S,))
            connection.execute(
                sql("INSERT INTO revoked_sessions (sid, expires_at) VALUES (?, ?) ON CONFLICT (sid) DO NOTHING"),
                (sid, expires),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    async def session_revoked(self, sid: str) -> bool:
        """Was session ``sid`` signed out (by any process on this log)?"""
        query = self.dialect.sql("SELECT 1 FROM revoked_sessions WHERE sid = ?")
        return await self._read(lambda c: c.execute(query, (sid,)).fetchone() is not None)

    # --- the dashboard ------------------------------------------------------------------

    async def window_stats(self, since: str, until: str) -> WindowStats:
        """Counts, denials by policy and latency percentiles of the decisions logged in [since, until)."""
        return await self._read(lambda c: self._window_stats(c, since, until))

    def _window_stats(self, connection: Any, since: str, until: str) -> WindowStats:
        sql, window = self.dialect.sql, "kind = 'decision' AND created_at >= ? AND created_at < ?"

        def counts(query: str) -> dict[str, int]:
            return {str(key): int(n) for key, n in connection.execute(sql(query), (since, until)).fetchall()}

        by_type: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        query = f"SELECT decision_type, execution_status, COUNT(*) FROM log_entries WHERE {window} GROUP BY 1, 2"
        for decision_type, status, n in connection.execute(sql(query), (since, until)).fetchall():
            by_type[str(decision_type)] += int(n)
            by_status[str(status)] += int(n)
        denied = counts(
            "SELECT d.policy, COUNT(DISTINCT d.entry_id) FROM log_denied d JOIN log_entries e ON e.id = d.entry_id "
            f"WHERE e.{window.replace(' AND ', ' AND e.')} GROUP BY d.policy"
        )
        resolved = counts(
            "SELECT status, COUNT(*) FROM pending_approvals WHERE resolved_at >= ? AND resolved_at < ? GROUP BY status"
        )
        p50, p99 = self._percentiles(connection, window, (since, until), (0.50, 0.99))
        return WindowStats(sum(by_type.values()), dict(sorted(by_type.items())), dict(sorted(by_status.items())),
                           denied, p50, p99, resolved)  # fmt: skip

    def _percentiles(
        self, connection: Any, window: str, params: tuple[str, str], ranks: tuple[float, ...]
    ) -> list[float | None]:
        """Nearest-rank percentiles of the decisions' end-to-end latency, computed in the database."""
        sql, latency = self.dialect.sql, self.dialect.latency
        where = f"{window} AND {latency} IS NOT NULL"
        (total,) = connection.execute(sql(f"SELECT COUNT(*) FROM log_entries WHERE {where}"), params).fetchone()
        found: list[float | None] = []
        for rank in ranks:
            if not total:
                found.append(None)
                continue
            offset = max(math.ceil(rank * int(total)) - 1, 0)
            query = f"SELECT {latency} FROM log_entries WHERE {where} ORDER BY 1 LIMIT 1 OFFSET {offset}"
            found.append(float(connection.execute(sql(query), params).fetchone()[0]))
        return found

    # --- ruleset versions ----------------------------------------------------------

    async def register_version(
        self, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: dict[str, Any] | None
    ) -> None:
        """Store a loaded version's files (content-addressed) and note when it was loaded."""
        self._require_writable()
        await self._read(lambda c: self._register(c, version, files, rulesets, git))

    def _register(
        self, connection: Any, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: Any
    ) -> None:
        sql, at = self.dialect.sql, now()
        connection.execute(self.dialect.begin_write)
        try:
            for path, content in files:
                digest = hashlib.sha256(content).hexdigest()
                connection.execute(
                    sql("INSERT INTO blobs (sha256, content) VALUES (?, ?) ON CONFLICT DO NOTHING"), (digest, content)
                )
                connection.execute(
                    sql("INSERT INTO version_files (version, path, sha256) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
                    (version, path, digest),
                )
            connection.execute(
                sql(
                    "INSERT INTO versions (version, first_loaded_at, last_loaded_at, loads, rulesets, git) "
                    "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (version) DO UPDATE SET "
                    "last_loaded_at = excluded.last_loaded_at, loads = versions.loads + 1, "
                    "git = COALESCE(excluded.git, versions.git)"
                ),
                (version, at, at, json.dumps(rulesets, sort_keys=True), json.dumps(git) if git else None),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    async def versions(self) -> list[VersionInfo]:
        """Every registered version, most recently loaded first."""
        query = "SELECT version, first_loaded_at, last_loaded_at, loads, rulesets, git FROM versions"
        rows = await self._read(lambda c: c.execute(query + " ORDER BY last_loaded_at DESC").fetchall())
        return [
            VersionInfo(v, first, last, int(n), json.loads(rs), json.loads(git) if git else None)
            for v, first, last, n, rs, git in rows
        ]

    async def version_files(self, version: str) -> list[VersionFile]:
        query = self.dialect.sql(
            "SELECT f.path, f.sha256, b.content FROM version_files f JOIN blobs b ON b.sha256 = f.sha256 "
            "WHERE f.version = ? ORDER BY f.path"
        )
        rows = await self._read(lambda c: c.execute(query, (version,)).fetchall())
        return [VersionFile(str(p), str(s), bytes(content)) for p, s, content in rows]

    # --- verification ---------------------------------------------------------------

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
        self._readers.shutdown(wait=True)
        for connection in self._connections:
            with contextlib.suppress(*self.dialect.errors):
                connection.close()


def require_log(db: str) -> Dialect:
    """The dialect of ``db`` once it is known to hold a decision log, else NotFound; read-only (a
    writing ``SqlDecisionLog`` creates its schema in whatever database it is given)."""
    dialect = dialect_for(db)
    if dialect.name == "sqlite" and not Path(dialect.target).is_file():
        raise NotFound(f"no decision log at {db}")
    try:
        connection = dialect.connect_read_only()
    except dialect.errors as error:
        raise NotFound(f"no decision log at {db} ({error})") from None
    try:
        connection.execute("SELECT 1 FROM log_entries WHERE 1 = 0").fetchall()
    except dialect.errors:
        raise NotFound(f"no decision log at {db} (no log_entries table)") from None
    finally:
        connection.close()
    return dialect


def verify_log(db: str) -> VerifyReport:
    """Walk every chain of the log at ``db`` (see ``decision_log.verify``), read-only: nothing is
    created, and a database without a decision log raises NotFound."""
    dialect = require_log(db)
    connection = dialect.connect_read_only()
    try:
        indexes = _index_rows(connection)
        if dialect.name == "postgresql":
            connection.autocommit = False  # a server-side cursor streams inside a transaction
            cursor = connection.cursor(name="opsgate_verify")
        else:
            cursor = connection.cursor()
        with contextlib.closing(cursor):
            cursor.execute(f"SELECT {_RECORD_COLUMNS} FROM log_entries ORDER BY writer, seq")
            report = verify((StoredRecord(*row) for row in cursor), indexes)
        if dialect.name == "postgresql":
            connection.rollback()
            connection.autocommit = True
        versions, problem = verify_versions(_all_versions(connection))
        return msgspec.structs.replace(report, versions=versions, version_error=problem)
    finally:
        connection.close()


def _index_rows(connection: Any) -> dict[int, Index]:
    """The filter indexes (fired rules, denying policies) of every record, to check against the bodies."""
    fired: dict[int, list[tuple[str, bool]]] = {}
    denied: dict[int, list[tuple[str, str]]] = {}
    for entry_id, rule, won in connection.execute("SELECT entry_id, rule_id, won FROM log_fired").fetchall():
        fired.setdefault(int(entry_id), []).append((str(rule), bool(won)))
    for entry_id, policy, vid in connection.execute("SELECT entry_id, policy, violation_id FROM log_denied"):
        denied.setdefault(int(entry_id), []).append((str(policy), str(vid)))
    return {
        entry_id: (tuple(sorted(fired.get(entry_id, []))), tuple(sorted(denied.get(entry_id, []))))
        for entry_id in set(fired) | set(denied)
    }


def _all_versions(connection: Any) -> dict[str, list[VersionFile]]:
    found: dict[str, list[VersionFile]] = {}
    rows = connection.execute(
        "SELECT v.version, f.path, f.sha256, b.content FROM versions v "
        "LEFT JOIN version_files f ON f.version = v.version LEFT JOIN blobs b ON b.sha256 = f.sha256 "
        "ORDER BY v.version, f.path"
    ).fetchall()
    for version, path, digest, content in rows:
        files = found.setdefault(str(version), [])
        if path is not None:
            files.append(VersionFile(str(path), str(digest), bytes(content or b"")))
    return found


def _filters(query: DecisionQuery) -> tuple[str, tuple[Any, ...]]:
    clauses, params = ["kind = 'decision'"], []
    simple = (
        ("created_at >= ?", normalize_time(query.since) if query.since else None),
        ("created_at < ?", normalize_time(query.until) if query.until else None),
        ("ruleset = ?", query.ruleset),
        ("decision_type = ?", query.decision_type),
        ("execution_status = ?", query.status),
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

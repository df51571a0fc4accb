"""What differs between SQLite and PostgreSQL: connecting (with its timeouts), the DDL, how a
writer locks its chain, how a connection stuck on a dead peer is broken from another thread, and
which cause a failed write is counted under."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from service.adapters.store.bodies import register
from service.adapters.store.schema import ADDED_COLUMNS, POSTGRES_SCHEMA, SQLITE_SCHEMA
from service.adapters.store.writelock import WriteTurn
from service.errors import UnsupportedDecisionLog


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """How long the log waits on its database before it gives up on a connection."""

    connect_s: float = 5.0  # opening a PostgreSQL connection
    statement_s: float = 30.0  # PostgreSQL's statement_timeout; a read running longer is dropped
    write_s: float = 5.0  # a commit running longer is stuck: its connection is dropped and replaced
    keepalive_s: float = 10.0  # TCP keepalive idle and interval; a peer silent for 3 probes is dead


class Dialect:
    name = "sqlite"
    schema = SQLITE_SCHEMA
    begin_write = "BEGIN IMMEDIATE"  # takes the write lock now: the chain head read next is current

    def __init__(self, target: str, timeouts: Timeouts | None = None) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()

    def write_turn(self) -> contextlib.AbstractContextManager[None]:
        """Held around each write transaction: the processes writing one SQLite file take turns
        (``service.adapters.store.writelock``); raises TurnTimeout past ``write_s`` of waiting."""
        return WriteTurn(self.target).held(self.timeouts.write_s)

    def connect(self) -> Any:
        path = Path(self.target)
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # durable before the answer
        connection.execute("PRAGMA busy_timeout=10000")
        register(connection)
        return connection

    def connect_read_only(self) -> Any:
        """A connection that cannot change the file (no journal mode set, nothing created)."""
        connection = sqlite3.connect(
            f"{Path(self.target).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        register(connection)
        return connection

    def sql(self, text: str) -> str:
        return text

    def lock_chain(self, connection: Any, writer: str) -> None:
        """Serialise writers of one chain; BEGIN IMMEDIATE already did in SQLite."""

    def create_schema(self, connection: Any) -> None:
        connection.executescript(self.schema)
        for table, column, kind in ADDED_COLUMNS:  # a log created before the column was added
            present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                try:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as error:  # another process added it first
                    if "duplicate column" not in str(error):
                        raise

    def broken(self, error: Exception) -> bool:
        return False

    def abort(self, connection: Any) -> None:
        """Make the statement ``connection`` is running on another thread fail now."""
        connection.interrupt()

    def probe(self, connection: Any) -> None:
        """A write that changes nothing but must reach the file: it fails while the file is read-only
        or cannot grow (a transaction that writes nothing would commit even then)."""
        connection.execute(self.begin_write)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            connection.execute(f"PRAGMA user_version = {int(version)}")
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise

    def cause(self, error: BaseException) -> str:
        """The cause a failed write is counted and logged under."""
        name = str(getattr(error, "sqlite_errorname", ""))
        for prefix, cause in _SQLITE_CAUSES:
            if name.startswith(prefix):
                return cause
        return "error"

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    # a decision's end-to-end ms (its body may be stored compressed: ``service.adapters.store.bodies``)
    # (from its column; a decision logged before the column was added: from its body, which may be compressed)
    latency = "COALESCE(latency_ms, CAST(json_extract(opsgate_body(body), '$.latency_ms.total') AS REAL))"
    # the status a later record gives its decision: an outcome's, or an approval's or expiry's
    later_status = "COALESCE(json_extract(body, '$.outcome.status'), json_extract(body, '$.approval.status'))"


_SQLITE_CAUSES = (
    ("SQLITE_READONLY", "read_only"),
    ("SQLITE_FULL", "disk_full"),
    ("SQLITE_IOERR", "io_error"),
    ("SQLITE_CANTOPEN", "unavailable"),
    ("SQLITE_BUSY", "locked"),
    ("SQLITE_LOCKED", "locked"),
    ("SQLITE_INTERRUPT", "timeout"),
)


class PostgresDialect(Dialect):
    name = "postgresql"
    schema = POSTGRES_SCHEMA
    # the head is read after the advisory lock is granted; a snapshot taken earlier would be stale
    begin_write = "BEGIN ISOLATION LEVEL READ COMMITTED"

    def write_turn(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to wait for: each writer's advisory lock on its own chain is enough (``lock_chain``)."""
        return contextlib.nullcontext()

    def __init__(self, target: str, timeouts: Timeouts | None = None) -> None:
        super().__init__(target, timeouts)
        import psycopg

        self.psycopg = psycopg
        self.errors = (psycopg.Error,)

    def connect(self) -> Any:
        return self.psycopg.connect(self._conninfo(""), autocommit=True)

    def connect_read_only(self) -> Any:
        """A connection whose transactions are read-only, keeping the URL's own options (search_path...)."""
        return self.psycopg.connect(self._conninfo("-c default_transaction_read_only=on"), autocommit=True)

    def _conninfo(self, extra_options: str) -> str:
        """Timeouts and TCP keepalives on every connection (libpq sets none by default, and a
        connection whose peer went silent then blocks its thread for ever); the URL's own win."""
        given = self.psycopg.conninfo.conninfo_to_dict(self.target)
        t = self.timeouts
        idle = max(1, math.ceil(t.keepalive_s))
        params = {
            "connect_timeout": str(max(1, math.ceil(t.connect_s))),
            "keepalives": "1",
            "keepalives_idle": str(idle),
            "keepalives_interval": str(idle),
            "keepalives_count": "3",
            "tcp_user_timeout": str(idle * 4 * 1000),  # unacknowledged data as long as the keepalives allow
        }
        params = {key: value for key, value in params.items() if key not in given}
        options = str(given.get("options") or "")
        if "statement_timeout" not in options:
            options += f" -c statement_timeout={math.ceil(t.statement_s * 1000)}"
        if "idle_in_transaction_session_timeout" not in options:
            # the server ends a transaction whose client went silent (holding the chain's lock) after
            # as long as a commit may take, so the writer's next connection can take the lock
            options += f" -c idle_in_transaction_session_timeout={math.ceil(t.write_s * 1000)}"
        params["options"] = f"{options} {extra_options}".strip()
        return str(self.psycopg.conninfo.make_conninfo(self.target, **params))

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

    def abort(self, connection: Any) -> None:
        """Shut the connection's socket down: a thread waiting on a silent peer wakes with an error
        (closing the descriptor from another thread would not wake it, and could reuse it)."""
        try:
            fd = connection.fileno()
        except self.psycopg.Error:
            return  # already closed
        with socket.socket(fileno=os.dup(fd)) as sock, contextlib.suppress(OSError):  # already shut
            sock.shutdown(socket.SHUT_RDWR)

    def probe(self, connection: Any) -> None:
        """A round trip that only a server able to write answers (a read-only one refuses an xid)."""
        connection.execute("SELECT txid_current()").fetchone()

    def cause(self, error: BaseException) -> str:
        errors = self.psycopg.errors
        if isinstance(error, errors.QueryCanceled):
            return "timeout"
        if isinstance(error, errors.ReadOnlySqlTransaction):
            return "read_only"
        if isinstance(error, errors.DiskFull):
            return "disk_full"
        if isinstance(error, self.psycopg.OperationalError):
            return "unreachable"
        return "error"

    latency = "COALESCE(latency_ms, ((body::jsonb) -> 'latency_ms' ->> 'total')::double precision)"
    later_status = "COALESCE((body::jsonb) -> 'outcome' ->> 'status', (body::jsonb) -> 'approval' ->> 'status')"


def dialect_for(db: str, timeouts: Timeouts | None = None) -> Dialect:
    if db.startswith(("postgresql://", "postgres://")):
        return PostgresDialect(db, timeouts)
    if "://" in db:
        raise UnsupportedDecisionLog(f"unsupported decision log {db!r}: use a SQLite file path or a postgresql:// URL")
    return Dialect(db.removeprefix("sqlite:"), timeouts)


def public_url(url: str) -> str:
    """A PostgreSQL URL as /ready may show it: host, port and database only.  The user info and the
    whole query string are dropped (``?password=``, ``sslpassword``, ``passfile``... carry secrets)."""
    parts = urlsplit(url)
    return f"postgresql://{parts.netloc.rpartition('@')[2]}{parts.path}"

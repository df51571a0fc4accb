"""The decision log's database: the only place that connects to SQLite or PostgreSQL.

One ``Database`` serves both; a small ``Dialect`` holds what differs (connecting, the
DDL, how a writer locks its chain).  Every write runs on one writer thread (``write``,
``write_together``): the writes of one chain that wait together are committed as one
transaction (group commit), so concurrent requests share a commit and its fsync, and a
write returns only once it is durable.  Reads (``read``) run on a small pool of threads,
each with its own connection.  The narrow stores (records, approvals, sessions,
statistics, versions) hold the SQL of their tables and run it through these entry points.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from service.adapters.store.schema import POSTGRES_SCHEMA, SQLITE_SCHEMA
from service.errors import DecisionLogError, OpsgateError, UnsupportedDecisionLog

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")
#: The most queued writes one transaction takes (a batch counts once: it is never split).
MAX_GROUP = 512


class Dialect:
    name = "sqlite"
    schema = SQLITE_SCHEMA
    begin_write = "BEGIN IMMEDIATE"  # takes the write lock now: the chain head read next is current

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
    schema = POSTGRES_SCHEMA
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
        raise UnsupportedDecisionLog(f"unsupported decision log {db!r}: use a SQLite file path or a postgresql:// URL")
    return Dialect(db.removeprefix("sqlite:"))


def public_url(url: str) -> str:
    """A PostgreSQL URL as /ready may show it: host, port and database only.  The user info and the
    whole query string are dropped (``?password=``, ``sslpassword``, ``passfile``... carry secrets)."""
    parts = urlsplit(url)
    return f"postgresql://{parts.netloc.rpartition('@')[2]}{parts.path}"


class _Job:
    """One queued write: ``work(connection, items)`` and the future of its results."""

    __slots__ = ("work", "items", "together", "done")

    def __init__(self, work: Callable[[Any, list[Any]], list[Any]], items: list[Any], together: bool) -> None:
        self.work = work
        self.items = items
        self.together = together
        self.done: Future[list[Any]] = Future()

    def settle(self, results: list[Any] | None, error: BaseException | None = None) -> None:
        # a caller that went away (its request cancelled) still has its write committed
        if not self.done.set_running_or_notify_cancel():
            return
        if error is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(results or [])


_STOP = object()


class Database:
    """A decision log's database: its dialect, the writer thread, and the readers' connections."""

    def __init__(self, dialect: Dialect, *, read_only: bool = False) -> None:
        """Create the schema and start the writer; ``read_only``: nothing is created or written
        (no schema, no writer thread), and writing raises."""
        self.dialect = dialect
        self.read_only = read_only
        self._connect = dialect.connect_read_only if read_only else dialect.connect
        self._queue: queue.Queue[_Job | object] = queue.Queue()
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
        """Where the log is, as /ready may show it (no credentials)."""
        if self.dialect.name == "sqlite":
            return f"sqlite:{self.dialect.target}"
        return public_url(self.dialect.target)

    # --- writing ------------------------------------------------------------------

    async def write(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on the writer thread, in a transaction of its own, committed before
        this returns.  An OpsgateError it raises (a refusal) rolls it back and is raised as is; any
        other failure raises DecisionLogError."""
        results: list[T] = await self._submit(lambda connection, _: [work(connection)], [None], together=False)
        return results[0]

    async def write_together(self, work: Callable[[Any, list[P]], list[R]], items: list[P]) -> list[R]:
        """``work(connection, items)`` on the writer thread, in one transaction with the items of every
        caller of the same ``work`` waiting then, in order (one caller's items are never split); one
        result per item, once committed.  Any failure fails them all with DecisionLogError."""
        results: list[R] = await self._submit(work, items, together=True)
        return results

    async def _submit(self, work: Callable[[Any, list[Any]], list[Any]], items: list[Any], together: bool) -> Any:
        if self.read_only:
            raise DecisionLogError(f"decision log {self.description} is open read-only")
        job = _Job(work, items, together)
        self._queue.put(job)  # one queue entry, so the writer cannot split it across commits
        return await asyncio.wrap_future(job.done)

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
            jobs = [entry for entry in group if isinstance(entry, _Job)]
            together = [job for job in jobs if job.together]
            if together:
                connection = self._commit(connection, together)
            # every other write in a transaction of its own: one that is refused, or that two
            # replicas' groups would lock in opposite orders, never fails the group's decisions
            for job in jobs:
                if not job.together:
                    connection = self._commit(connection, [job])
            if len(jobs) < len(group):  # asked to stop
                connection.close()
                return

    def _commit(self, connection: Any, jobs: list[_Job]) -> Any:
        for attempt in (1, 2):
            committing = False
            try:
                connection.execute(self.dialect.begin_write)
                results = _run(connection, jobs)
                committing = True
                connection.execute("COMMIT")
                break
            except Exception as error:  # noqa: BLE001 - the writer thread must outlive any one bad group
                connection = self._recover(connection, error)
                # a connection lost before COMMIT wrote nothing: try once more on a new one.  Lost
                # during COMMIT, the outcome is unknown, so the callers are told it failed.
                if attempt == 1 and not committing and self.dialect.broken(error):
                    continue
                refused = isinstance(error, OpsgateError) and not committing
                failure = error if refused else DecisionLogError(f"decision log write failed: {error}")
                for job in jobs:
                    job.settle(None, failure)
                return connection
        for job, found in zip(jobs, results, strict=True):
            job.settle(found)
        return connection

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

    async def read(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on a reader thread's own connection (read-only when the database is
        open read-only); a driver error raises DecisionLogError."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read_on, work)

    def _read_on(self, work: Callable[[Any], T]) -> T:
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

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
        self._readers.shutdown(wait=True)
        for connection in self._connections:
            with contextlib.suppress(*self.dialect.errors):
                connection.close()


def _run(connection: Any, jobs: list[_Job]) -> list[list[Any]]:
    """Each job's results; the jobs of one ``work`` run as one call, their items in queue order."""
    by_work: dict[Any, list[_Job]] = {}
    for job in jobs:
        by_work.setdefault(job.work, []).append(job)
    results: dict[int, list[Any]] = {}
    for work, same in by_work.items():
        found = work(connection, [item for job in same for item in job.items])
        at = 0
        for job in same:
            results[id(job)] = found[at : at + len(job.items)]
            at += len(job.items)
    return [results[id(job)] for job in jobs]

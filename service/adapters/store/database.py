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
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from service.adapters.store.dialect import Dialect, PostgresDialect, Timeouts, dialect_for, public_url
from service.adapters.store.health import Health
from service.adapters.store.watchdog import Watchdog
from service.adapters.store.writelock import TurnTimeout
from service.errors import DecisionLogError, OpsgateError
from service.ports.log import LogHealth

__all__ = ["Database", "Dialect", "PostgresDialect", "Timeouts", "dialect_for", "public_url"]
log = logging.getLogger("opsgate.log")

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")
#: The most queued writes one transaction takes (a batch counts once: it is never split).
MAX_GROUP = 512
#: After a failed reconnection, writes fail at once for this long instead of each waiting for a connect.
RECONNECT_EVERY_S = 1.0


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
        self._health = Health(self.description)
        timeouts = dialect.timeouts
        self._watchdog = Watchdog(dialect.abort, min(timeouts.write_s, timeouts.statement_s) / 4)
        self._connection: Any = None  # the writer's; None while it must be (re)opened
        self._retry_at = 0.0  # no reconnection before (time.monotonic())
        self._down: BaseException | None = None  # why the last reconnection failed
        self._stuck = False  # the watchdog broke the commit under way
        self._closing = False
        # a daemon: a writer still waiting on a silent database must not keep the process from exiting
        self._thread = threading.Thread(target=self._writer, name="opsgate-log-writer", daemon=True)
        if not read_only:
            self._thread.start()
            self._ready.result()  # surfaces a bad path, a refused connection or a locked file at start

    def health(self) -> LogHealth:
        """Whether writes commit now, and the failed ones by cause (see ``service.ports.log.Log``)."""
        return self._health.state()

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
            self._connection = self.dialect.connect()
            self.dialect.create_schema(self._connection)
        except Exception as error:  # noqa: BLE001 - any driver error is reported the same way
            self._ready.set_exception(DecisionLogError(f"cannot open decision log {self.description}: {error}"))
            return
        self._ready.set_result(None)
        while True:
            try:  # while the log cannot commit, it is probed every RECONNECT_EVERY_S without waiting for writes
                group = [self._queue.get(timeout=None if self._health.state().ok else RECONNECT_EVERY_S)]
            except queue.Empty:
                self._probe()
                continue
            while len(group) < MAX_GROUP and not self._queue.empty():
                group.append(self._queue.get_nowait())
            jobs = [entry for entry in group if isinstance(entry, _Job)]
            together = [job for job in jobs if job.together]
            if together:
                self._commit(together)
            # every other write in a transaction of its own: one that is refused, or that two
            # replicas' groups would lock in opposite orders, never fails the group's decisions
            for job in jobs:
                if not job.together:
                    self._commit([job])
            if len(jobs) < len(group):  # asked to stop
                if self._connection is not None:
                    with contextlib.suppress(*self.dialect.errors):
                        self._connection.close()
                return

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            with self.dialect.write_turn():  # the turn is released before the callers are told
                results = self._transaction(jobs)
        except TurnTimeout as error:
            self._fail(jobs, "locked", str(error))
            return
        if results is None:  # failed: its callers were told why
            return
        self._health.committed()
        for job, found in zip(jobs, results, strict=True):
            job.settle(found)

    def _transaction(self, jobs: list[_Job]) -> list[Any] | None:
        """The jobs' results once committed; None when it failed (each job then settled with why)."""
        for attempt in (1, 2):
            connection = self._connected()
            if connection is None:
                why = "it is closing" if self._closing else str(self._down)
                self._fail(jobs, "unreachable", f"decision log is not connected: {why}")
                return None
            committing = self._stuck = False
            try:
                with self._watchdog.watch(connection, self.dialect.timeouts.write_s, self._on_stuck):
                    connection.execute(self.dialect.begin_write)
                    results = _run(connection, jobs)
                    committing = True
                    connection.execute("COMMIT")
            except Exception as error:  # noqa: BLE001 - the writer thread must outlive any one bad group
                self._recover(connection, error)
                # a connection lost before COMMIT wrote nothing: try once more on a new one (not one that
                # was stuck: its callers have waited long enough).  Lost during COMMIT, the outcome is
                # unknown, so the callers are told it failed.
                if attempt == 1 and not committing and not self._stuck and self.dialect.broken(error):
                    continue
                if isinstance(error, OpsgateError) and not committing:  # a refusal, not a failure of the log
                    for job in jobs:
                        job.settle(None, error)
                    return None
                self._fail(jobs, "timeout" if self._stuck else self.dialect.cause(error), str(error))
                return None
            return results
        return None

    def _probe(self) -> None:
        """Try the database while it cannot commit: /ready must come back without a decision to log
        (a load balancer sends none to a replica that is not ready)."""
        connection = self._connected()
        if connection is None:
            return
        try:
            deadline = self.dialect.timeouts.write_s
            with self.dialect.write_turn(), self._watchdog.watch(connection, deadline, lambda: None):
                self.dialect.probe(connection)
        except TurnTimeout:  # another process is writing: not a sign that this one cannot
            return
        except Exception as error:  # noqa: BLE001 - still failing: stays not ready
            self._recover(connection, error)
            return
        self._health.committed()

    def _fail(self, jobs: list[_Job], cause: str, message: str) -> None:
        self._health.failed(cause, message, len(jobs))
        failure = DecisionLogError(f"decision log write failed: {message}")
        for job in jobs:
            job.settle(None, failure)

    def _on_stuck(self) -> None:
        """Called by the watchdog when a commit runs past its deadline: the log is not ready from now."""
        self._stuck = True
        self._health.failed("timeout", f"a commit took longer than {self.dialect.timeouts.write_s:g} s", 0)

    def _connected(self) -> Any:
        """The writer's connection, reopened if it was lost; None while the database cannot be reached
        (then a reconnection is tried at most every RECONNECT_EVERY_S, and writes fail meanwhile)."""
        if self._connection is None and not self._closing and time.monotonic() >= self._retry_at:
            try:
                self._connection = self.dialect.connect()
            except Exception as error:  # noqa: BLE001 - any driver error means: still down
                self._down = error
                self._retry_at = time.monotonic() + RECONNECT_EVERY_S
        return self._connection

    def _recover(self, connection: Any, error: Exception) -> None:
        with contextlib.suppress(*self.dialect.errors):
            connection.execute("ROLLBACK")
        if self.dialect.broken(error):
            self._connection = None
            with contextlib.suppress(*self.dialect.errors):
                connection.close()

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
            with self._watchdog.watch(connection, self.dialect.timeouts.statement_s, _read_stuck):
                return work(connection)
        except self.dialect.errors as error:
            if self.dialect.broken(error):
                self._local.connection = None
            raise DecisionLogError(f"decision log read failed: {error}") from error

    def close(self) -> None:
        """Stop the writer once the writes queued before are done, and the readers; bounded even when
        the database went silent: a stuck commit is broken at its deadline, a stuck read at once."""
        self._closing = True
        if self._thread.is_alive():
            self._queue.put(_STOP)
            timeouts = self.dialect.timeouts
            self._thread.join(timeout=timeouts.write_s + timeouts.connect_s + 1)
        self._watchdog.abort_all()
        self._readers.shutdown(wait=True, cancel_futures=True)
        self._watchdog.stop()
        for connection in self._connections:
            with contextlib.suppress(*self.dialect.errors):
                connection.close()


def _read_stuck() -> None:
    log.warning("a decision log read ran past its deadline: its connection is dropped")


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

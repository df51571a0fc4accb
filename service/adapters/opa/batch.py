"""Micro-batching: concurrent guardrail queries share one OPA query (service/adapters/opa/guardrails.py's own).

Pure asyncio logic over a ``send(items) -> results`` callable (guardrails.py
owns the OPA call).  Adaptive: when no query is in flight an item is sent at
once, with no wait; while one is in flight, items gather until it returns or
the window passes, up to ``max_batch`` per query.  A failed send fails every
item of that query, so each waiter gets the same fail-closed answer it would
have got alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_BATCH = 256


class BatchCancelled(Exception):
    """The query an item went in was cancelled before it answered.

    Outside the error tree on purpose: it only carries a cancellation to the waiting callers,
    whose guardrails client turns any failure into an unavailable verdict (fail closed).
    """


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls into calls of ``send`` with several items."""

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[list[R]]],
        window_s: float,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self._send = send
        self.window_s = window_s
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries = 0  # sends made: fewer than ``items`` when batching happened
        self.items = 0

    async def submit(self, item: T) -> R:
        """The result for ``item``; raises what ``send`` raised for the query it went in."""
        if self.window_s <= 0:  # disabled: one query per item, as before
            self.queries += 1
            self.items += 1
            return (await self._send([item]))[0]
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._in_flight == 0 or len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._in_flight += 1
            self.queries += 1
            self.items += len(batch)
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise ValueError(f"{len(results)} results for {len(batch)} items")
        except Exception as error:  # noqa: BLE001 - every waiter gets the failure, none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a waiter that gave up (its request cancelled) is skipped
                    future.set_result(result)
        finally:
            for _, future in batch:  # cancelled mid-query (shutdown): nobody waits forever
                if not future.done():
                    future.set_exception(BatchCancelled("the guardrail query was cancelled"))
            self._in_flight -= 1
            if self._pending:  # what gathered while this query was out goes now
                self._flush()

    async def close(self) -> None:
        """Wait for the queries in flight (their waiters are answered)."""
        while self._tasks:  # a query that returns may start the next one with what gathered meanwhile
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

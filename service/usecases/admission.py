"""Admission control: a bound on the decisions one serving process has in flight.

Past the bound, the service sheds (503 ``overloaded`` with ``Retry-After``) before doing any
work, instead of taking everything and letting the event loop fall behind: a loop that is
far behind keeps OPA's answers waiting, the OPA timeout trips on a healthy OPA, and the
decisions escalate to a person because the service was busy.  With the bound, the work
queued in the loop stays small, so an OPA timeout means that OPA is slow.

A request weighs its decisions (a batch: its items).  One that would pass the bound waits,
first come first served, up to ``queue_s`` for room, then is shed; at most ``limit``
decisions wait at a time.  A request heavier than the bound (a large batch) is admitted
alone, once nothing else is in flight.  Pure asyncio: no framework, the clock is passed in.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from service.errors import Overloaded
from service.ports.metrics import AdmissionStats


class _Waiter:
    __slots__ = ("weight", "future", "admitted")

    def __init__(self, weight: int, future: asyncio.Future[None]) -> None:
        self.weight = weight
        self.future = future
        self.admitted = False


class Admission:
    """At most ``limit`` decisions in flight; ``queue_s`` the longest a request waits for room."""

    def __init__(self, limit: int, queue_s: float = 0.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.queue_s = queue_s
        self.clock = clock
        self.in_flight = 0
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._waiting = 0
        self._shed = self._admitted = 0
        self._waited_s = 0.0

    def stats(self) -> AdmissionStats:
        return AdmissionStats(self.limit, self.in_flight, self._waiting, self._shed, self._admitted, self._waited_s)

    def check(self) -> None:
        """Overloaded now when not even one more decision could be admitted or wait: a request is
        then refused before its body is read (how many decisions it holds is not known yet)."""
        if (self._queue or not self._fits(1)) and not self._may_wait(1):
            raise self._refused("with no room to wait")

    @asynccontextmanager
    async def admitted(self, decisions: int = 1) -> AsyncIterator[None]:
        """Hold room for ``decisions`` for the ``with`` block; raises Overloaded when there is none."""
        await self._enter(decisions)
        try:
            yield
        finally:
            self._release(decisions)

    def _fits(self, weight: int) -> bool:
        return self.in_flight + weight <= self.limit or self.in_flight == 0

    async def _enter(self, weight: int) -> None:
        if not self._queue and self._fits(weight):  # the usual case: room, and nobody ahead
            self._take(weight)
            return
        if not self._may_wait(weight):
            raise self._refused("with no room to wait", weight)
        waiter = _Waiter(weight, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        self._waiting += weight
        started = self.clock()
        try:
            async with asyncio.timeout(self.queue_s):
                await waiter.future
        except TimeoutError:
            if not waiter.admitted:  # (admitted at the very deadline: it keeps the room it was given)
                self._dequeue(waiter)
                raise self._refused(f"after waiting {self.queue_s * 1000:g} ms", weight) from None
        except BaseException:  # cancelled (the request timed out, the client left): nothing is held after
            if waiter.admitted:
                self._release(weight)
            else:
                self._dequeue(waiter)
            raise
        self._waited_s += self.clock() - started

    def _may_wait(self, weight: int) -> bool:
        return self.queue_s > 0 and self._waiting + min(weight, self.limit) <= self.limit

    def _dequeue(self, waiter: _Waiter) -> None:
        if waiter in self._queue:  # (a cancelled waiter may have been passed over by _wake already)
            self._queue.remove(waiter)
            self._waiting -= waiter.weight
        self._wake()  # the ones behind it may fit now

    def _take(self, weight: int) -> None:
        self.in_flight += weight
        self._admitted += 1

    def _release(self, weight: int) -> None:
        self.in_flight -= weight
        self._wake()

    def _wake(self) -> None:
        """Admit the waiters at the head of the queue, in order, while they fit."""
        while self._queue and self._fits(self._queue[0].weight):
            waiter = self._queue.popleft()
            self._waiting -= waiter.weight
            if waiter.future.done():  # cancelled, its request not yet told: it takes no room
                continue
            self._take(waiter.weight)
            waiter.admitted = True
            waiter.future.set_result(None)

    def _refused(self, why: str, weight: int = 0) -> Overloaded:
        self._shed += 1
        what = {0: "a request", 1: "1 decision"}.get(weight, f"{weight} decisions")
        return Overloaded(
            f"overloaded: {self.in_flight} decisions in flight, at most {self.limit} in this process; "
            f"{what} refused {why}, before any work; retry after 1 s"
        )

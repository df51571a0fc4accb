"""Delivering approved actions to their executors: from the outbox, at least once, each outcome once.

The outbox (``service.ports.executors.Outbox``) holds an action from the moment its approval is
committed.  A background task takes this writer's due items, at most ``batch`` at a time, and
POSTs each to its action type's executor.  A 2xx answer settles it DELIVERED, with an outcome
record chained in the same transaction (SUCCEEDED, or the ``status``/``detail`` the executor
answered); any other answer, or none, is retried after a delay doubled each attempt (at most
``max_backoff_s``), drawn between half and all of it; after the executor's ``max_attempts`` it is
DEAD, with a FAILED outcome.  A process killed between a delivery and its commit delivers the
item again after its restart (the executor drops it by its idempotency key): the settle is
conditional on the item still being PENDING, so its outcome is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from service.domain.record import ActionDelivery, OutcomeRecord, OutcomeReport, later, now
from service.ports.executors import (
    ActionSender,
    Answered,
    ExecutorsConfig,
    Outbox,
    OutboxItem,
    OutboxState,
)

log = logging.getLogger("opsgate.executors")

OUTCOMES = ("SUCCEEDED", "FAILED", "CANCELLED")
DETAIL_CHARS = 2000  # the most of an answer's text an outcome's detail keeps


def backoff_s(
    attempts: int, base_s: float, max_s: float, draw: Callable[[float, float], float] = random.uniform
) -> float:
    """The delay before the attempt after ``attempts`` failed ones: ``base_s`` doubled per failure, at
    most ``max_s``, then drawn between half and all of it (replicas' retries spread out)."""
    return float(min(base_s * 2 ** max(attempts - 1, 0), max_s) * draw(0.5, 1.0))


def reported(answer: Answered) -> OutcomeReport:
    """The outcome an executor's 2xx answer reports: its JSON ``status`` (SUCCEEDED, FAILED, CANCELLED)
    and ``detail`` when it sends them, else SUCCEEDED with the answer as the detail."""
    try:
        body = msgspec.json.decode(answer.body) if answer.body else None
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and body.get("status") in OUTCOMES:
        detail = body.get("detail")
        return OutcomeReport(str(body["status"]), str(detail if detail is not None else "")[:DETAIL_CHARS])
    return OutcomeReport("SUCCEEDED", f"executor answered {answer.status}: {answer.body}"[:DETAIL_CHARS])


class Deliverer:
    """Delivers this writer's outbox to ``senders`` (one per action type) as ``config`` says."""

    def __init__(
        self,
        config: ExecutorsConfig,
        senders: Mapping[str, ActionSender],
        outbox: Outbox,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.senders = senders
        self.outbox = outbox
        self.observe = observe  # (action type, result: delivered | retried | dead) after each attempt
        self._flying: dict[str, asyncio.Task[None]] = {}
        self._unreadable = False  # the last read of the outbox failed

    async def run(self) -> None:
        """Deliver until cancelled; the deliveries under way are cancelled with it (and made again later)."""
        try:
            while True:
                await self._start_due()
                pause = asyncio.ensure_future(asyncio.sleep(self.config.poll_s))
                waiting: set[asyncio.Future[Any]] = {pause, *self._flying.values()}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                pause.cancel()
                for key in [key for key, task in self._flying.items() if task.done()]:
                    self._flying.pop(key)
        finally:
            for task in self._flying.values():
                task.cancel()

    async def _start_due(self) -> None:
        room = self.config.batch - len(self._flying)
        if room <= 0:
            return
        try:
            due = await self.outbox.due(now(), self.config.batch + len(self._flying))
        except Exception:  # the log briefly unreadable: the loop goes on, said once until it reads again
            if not self._unreadable:
                log.exception("reading the outbox failed; trying again every %s s", self.config.poll_s)
            self._unreadable = True
            return
        self._unreadable = False
        for item in due:
            if item.key not in self._flying and len(self._flying) < self.config.batch:
                self._flying[item.key] = asyncio.create_task(self._guarded(item), name=f"opsgate-deliver-{item.key}")

    async def _guarded(self, item: OutboxItem) -> None:
        try:
            await self.deliver(item)
        except Exception:  # a settle the log refused: the item stays PENDING and is tried again
            log.exception("delivering action %s failed; it stays queued", item.key)

    async def deliver(self, item: OutboxItem) -> str:
        """One attempt at ``item``, settled or rescheduled; what it came to (delivered, retried, dead)."""
        sender = self.senders.get(item.action_type)
        if sender is None:
            answer = Answered(None, "", f"no executor is configured for action type {item.action_type!r}")
        else:
            answer = await sender.send(item)
        attempts = item.attempts + 1
        limit = self._max_attempts(item.action_type)
        if answer.error is None:
            result = "delivered"
            await self._settle(item, "DELIVERED", reported(answer), answer, attempts)
        elif attempts >= limit:
            result = "dead"
            detail = f"not delivered after {attempts} attempts: {answer.error}"
            await self._settle(item, "DEAD", OutcomeReport("FAILED", detail[:DETAIL_CHARS]), answer, attempts)
            log.warning("action %s (%s) is dead: %s", item.key, item.action_type, detail)
        else:
            result = "retried"
            delay = backoff_s(attempts, self.config.backoff_s, self.config.max_backoff_s)
            await self.outbox.retry(item, answer.error, later(now(), delay))
        if self.observe is not None:
            self.observe(item.action_type, result)
        return result

    def _max_attempts(self, action_type: str) -> int:
        executor = self.config.executors.get(action_type)
        return executor.max_attempts if executor is not None else 1

    async def _settle(
        self, item: OutboxItem, state: OutboxState, report: OutcomeReport, answer: Answered, attempts: int
    ) -> None:
        at = now()
        delivery = ActionDelivery(item.action_index, item.action_type, item.key, state, attempts, answer.status)
        outcome = OutcomeRecord(
            decision_id=item.decision_id, created_at=at, caller=f"executor:{item.action_type}", outcome=report,
            action=delivery,
        )  # fmt: skip
        await self.outbox.settle(item, state, outcome, at)

    async def counts(self) -> dict[str, int]:
        """The outbox's items by state, every state named (0 when none)."""
        return await self.outbox.counts()

    async def close(self) -> None:
        for sender in self.senders.values():
            with contextlib.suppress(Exception):
                await sender.close()

"""Shadow evaluation: a candidate version decides each live request's facts too, off the response path.

The live request only offers its answered response to a bounded queue (never
waits: when the queue is full the comparison is dropped and counted); one worker
task re-decides the facts under the candidate and counts the differences.  The
summary is held in memory: it starts afresh with each process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import msgspec

from service.domain.decision import answer
from service.domain.record import now
from service.usecases.answer import DecisionResponse
from service.usecases.candidate import Candidate, Candidates, NotComparable, candidate_dirs
from service.usecases.flips import NO_LIVE_VERDICT, Flip, FlipMatrix, Side, Skipped

log = logging.getLogger("opsgate.shadow")
QUEUE_SIZE = 1024
SAMPLES = 5  # the most recent decision ids kept per flip and per error reason


class ShadowSummary(msgspec.Struct, frozen=True, kw_only=True):
    """GET /admin/shadow's body; the comparisons made since the process started."""

    candidate_version: str
    live_version: str
    since: str
    compared: int
    differing: int  # the final decision type differs
    dropped: int  # lost to a full queue
    pending: int  # still queued
    errors: int  # could not be compared, counted under ``error_reasons``
    matrix: dict[str, dict[str, int]]
    samples: list[Flip]
    error_reasons: list[Skipped]


class Shadow:
    def __init__(self, candidate: Candidate, queue_size: int = QUEUE_SIZE, samples: int = SAMPLES) -> None:
        self.candidate = candidate
        self.since = now()
        self.dropped = 0
        self.flips = FlipMatrix(samples, recent=True)
        self._queue: asyncio.Queue[DecisionResponse] = asyncio.Queue(queue_size)
        self._worker = asyncio.create_task(self._run(), name="opsgate-shadow")

    @classmethod
    async def start(cls, root: Path, candidates: Candidates) -> Shadow:
        """The shadow of the candidate in ``root`` (a directory holding rules/ and rego/)."""
        candidate = await candidates.open(*candidate_dirs(root))
        log.info("shadow: candidate version %s from %s", candidate.version[:12], root)
        return cls(candidate)

    def offer(self, response: DecisionResponse) -> None:
        """Queue a live answer for comparison; never blocks the caller."""
        try:
            self._queue.put_nowait(response)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            response = await self._queue.get()
            try:
                await self._compare(response)
            except Exception as error:  # a shadow failure must never reach the live path
                log.exception("shadow comparison failed")
                self.flips.skip(response.result.decision_id, f"the comparison failed: {error}")
            finally:
                self._queue.task_done()

    async def _compare(self, response: DecisionResponse) -> None:
        result, explanation = response.result, response.result.explanation
        live = answer(result.decision, result.execution, explanation.fired_rules, explanation.proposal,
                      explanation.guardrails)  # fmt: skip
        if live.no_verdict:  # failed closed: an error, not a difference
            self.flips.skip(result.decision_id, NO_LIVE_VERDICT)
            return
        try:
            outcome = await self.candidate.redecide(result.explanation.ruleset.name, result.context)
        except NotComparable as skipped:
            self.flips.skip(result.decision_id, skipped.reason)
            return
        self.flips.add(result.decision_id, Side.of(live), Side.of(outcome.answer()))

    def summary(self, live_version: str) -> ShadowSummary:
        """What GET /admin/shadow answers."""
        flips = self.flips.summary()
        return ShadowSummary(
            candidate_version=self.candidate.version,
            live_version=live_version,
            since=self.since,
            compared=flips.compared,
            differing=flips.changed,
            dropped=self.dropped,
            pending=self._queue.qsize(),
            errors=sum(s.count for s in flips.not_comparable),
            matrix=flips.matrix,
            samples=flips.flips,
            error_reasons=flips.not_comparable,
        )

    async def close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await self.candidate.close()

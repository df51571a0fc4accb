"""The flip matrix and the shadow's bounded queue, with a fake candidate (pure logic)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import msgspec

from service.usecases.candidate import NotComparable
from service.usecases.flips import MAX_REASONS, OTHER_REASONS, FlipMatrix, Side
from service.usecases.shadow import Shadow, ShadowSummary

ESCALATE, DISPATCH, RETRY = "OPS.ESCALATE", "OPS.DISPATCH", "OPS.RETRY"


def side(decision_type: str, rule: str, *violations: str) -> Side:
    return Side(decision_type, [rule], list(violations))


def test_the_matrix_counts_the_diagonal_and_keeps_the_first_samples_of_each_flip() -> None:
    matrix = FlipMatrix(2)
    for n in range(3):
        matrix.add(f"d{n}", side(ESCALATE, "escalate-attempts"), side(DISPATCH, "dispatch"))
    matrix.add("d3", side(RETRY, "retry-after-failure"), side(RETRY, "retry-after-failure"))
    summary = matrix.summary()
    assert (summary.compared, summary.changed) == (4, 3)
    assert summary.matrix == {ESCALATE: {DISPATCH: 3}, RETRY: {RETRY: 1}}
    [flip] = summary.flips
    assert (flip.old, flip.new, flip.count) == (ESCALATE, DISPATCH, 3)
    assert [s.decision_id for s in flip.samples] == ["d0", "d1"]


def test_recent_keeps_the_latest_samples_and_reasons_beyond_the_cap_are_counted_together() -> None:
    matrix = FlipMatrix(2, recent=True)
    for n in range(3):
        matrix.add(f"d{n}", side(ESCALATE, "escalate-attempts"), side(RETRY, "retry-after-failure", "OPS-X"))
    for n in range(MAX_REASONS + 2):
        matrix.skip(f"s{n}", f"reason {n}")
    summary = matrix.summary()
    assert [s.decision_id for s in summary.flips[0].samples] == ["d1", "d2"]
    assert summary.flips[0].samples[0].new.violations == ["OPS-X"]
    other = next(s for s in summary.not_comparable if s.reason == OTHER_REASONS)
    assert (other.count, other.samples) == (2, [f"s{MAX_REASONS}", f"s{MAX_REASONS + 1}"])
    assert len(summary.not_comparable) == MAX_REASONS + 1


class NeverComparable:
    version = "candidate-version"

    async def redecide(self, ruleset_name: str, facts: dict[str, Any]) -> Any:
        raise NotComparable(f"ruleset {ruleset_name!r} is not in the candidate")

    async def close(self) -> None:
        pass


def response(n: int, *, proposal: Any = None, available: bool = True) -> Any:
    """A live answer with the fields the shadow reads: an escalation by escalate-attempts."""
    guardrails = SimpleNamespace(available=available, violations=[])
    fired = [SimpleNamespace(id="escalate-attempts", won=True)]
    explanation = SimpleNamespace(
        ruleset=SimpleNamespace(name="ops"), proposal=proposal, guardrails=guardrails, fired_rules=fired
    )
    decision = SimpleNamespace(decision_type=ESCALATE, confidence=1.0)
    execution = SimpleNamespace(status="ESCALATED", actions=[])
    result = SimpleNamespace(decision_id=f"d{n}", context={}, explanation=explanation, decision=decision,
                             execution=execution)  # fmt: skip
    return SimpleNamespace(result=result)


def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    async def scenario() -> ShadowSummary:
        shadow = Shadow(NeverComparable(), queue_size=2)  # type: ignore[arg-type]
        for n in range(5):
            shadow.offer(response(n))  # the worker has not run yet: room for two
        await asyncio.wait_for(shadow._queue.join(), 5)
        summary = shadow.summary("live-version")
        await shadow.close()
        return summary

    summary = msgspec.to_builtins(asyncio.run(scenario()))
    assert (summary["dropped"], summary["compared"], summary["errors"]) == (3, 0, 2)
    assert summary["error_reasons"] == [
        {"reason": "ruleset 'ops' is not in the candidate", "count": 2, "samples": ["d0", "d1"]}
    ]
    assert (summary["candidate_version"], summary["live_version"]) == ("candidate-version", "live-version")


class AlwaysDispatches:
    """A candidate that decides every facts as a dispatch (the live version would too, with OPA up)."""

    version = "candidate-version"
    redecided = 0

    async def redecide(self, ruleset_name: str, facts: dict[str, Any]) -> Any:
        self.redecided += 1
        rule = SimpleNamespace(id="dispatch", won=True)
        return SimpleNamespace(decision=SimpleNamespace(decision_type=DISPATCH), fired_rules=[rule],
                               verdict=SimpleNamespace(violations=[]))  # fmt: skip

    async def close(self) -> None:
        pass


def test_a_live_decision_that_failed_closed_counts_as_an_error_not_a_difference() -> None:
    candidate = AlwaysDispatches()

    async def scenario() -> ShadowSummary:
        shadow = Shadow(candidate)  # type: ignore[arg-type]
        # proposed a dispatch, OPA gave no verdict: escalated by the live path, not by its rules
        shadow.offer(response(0, proposal=SimpleNamespace(decision_type=DISPATCH), available=False))
        await asyncio.wait_for(shadow._queue.join(), 5)
        summary = shadow.summary("live-version")
        await shadow.close()
        return summary

    summary = msgspec.to_builtins(asyncio.run(scenario()))
    assert (summary["compared"], summary["differing"], summary["errors"]) == (0, 0, 1)
    assert summary["matrix"] == {} and summary["samples"] == []
    assert summary["error_reasons"] == [
        {"reason": "the live decision had no guardrail verdict", "count": 1, "samples": ["d0"]}
    ]
    assert candidate.redecided == 0

"""What one decision answered, read the same way from wherever it comes from.

A decision reaches the comparing code in three shapes: a fresh ``Outcome`` (``opsgate test``,
a candidate's re-decision), a logged record (replay, ``test --from-decision``) and a live
response (shadow).  Each is read here once, into an ``Answer``, so the winners, the violated
policy ids and the case format's ``won`` rule are written in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from service.domain.decision import Outcome

if TYPE_CHECKING:  # the pipeline imports far more than this module needs at run time
    from service.usecases.decide import DecisionResponse


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    decision_type: str
    confidence: float
    fired: list[str]  # every rule that fired, in firing order
    winners: list[str]  # the ones the hit policy picked
    violations: list[str]  # distinct violated policy ids, sorted
    execution_status: str
    actions: list[dict[str, Any]]
    # a proposal was made but OPA gave no verdict (down or timed out): the decision failed
    # closed, so its type says nothing about the rules or policies
    no_verdict: bool

    def won(self, hit_policy: str) -> str | list[str] | None:
        """A case's ``won``: the list of winners under ``collect``, the one winner under ``first``."""
        if hit_policy == "collect":
            return self.winners
        return self.winners[0] if self.winners else None

    def case_values(self, hit_policy: str) -> dict[str, Any]:
        """Every value a rule test case can expect, under the case format's keys."""
        return {
            "decision_type": self.decision_type,
            "confidence": self.confidence,
            "fired": self.fired,
            "won": self.won(hit_policy),
            "violations": self.violations,
            "execution_status": self.execution_status,
            "actions": self.actions,
        }


def _answer(
    decision_type: str,
    confidence: float,
    execution: tuple[str, list[dict[str, Any]]],
    fired: Iterable[tuple[str, bool]],
    violation_ids: Iterable[str],
    no_verdict: bool,
) -> Answer:
    rules = list(fired)
    status, actions = execution
    return Answer(
        decision_type=decision_type,
        confidence=confidence,
        fired=[rule for rule, _ in rules],
        winners=[rule for rule, won in rules if won],
        violations=sorted(set(violation_ids)),
        execution_status=status,
        actions=actions,
        no_verdict=no_verdict,
    )


def of_outcome(outcome: Outcome) -> Answer:
    decision, execution = outcome.decision, outcome.execution
    return _answer(
        decision.decision_type,
        decision.confidence,
        (execution.status, execution.actions),
        ((rule.id, rule.won) for rule in outcome.fired_rules),
        (violation.id for violation in outcome.verdict.violations),
        outcome.proposal is not None and not outcome.verdict.available,
    )


def of_record(record: dict[str, Any]) -> Answer:
    """A logged decision record, as plain JSON values (``StoredRecord.record()``)."""
    decision, execution, guardrails = record["decision"], record["execution"], record["guardrails"]
    return _answer(
        decision["decision_type"],
        decision["confidence"],
        (execution["status"], execution["actions"]),
        ((rule["id"], rule["won"]) for rule in record["fired_rules"]),
        (violation["id"] for violation in guardrails["violations"]),
        record["proposal"] is not None and not guardrails["available"],
    )


def of_response(response: DecisionResponse) -> Answer:
    """A live answer, as the response carries it."""
    result, explanation = response.result, response.result.explanation
    return _answer(
        result.decision.decision_type,
        result.decision.confidence,
        (result.execution.status, result.execution.actions),
        ((rule.id, rule.won) for rule in explanation.fired_rules),
        (violation.id for violation in explanation.guardrails.violations),
        explanation.proposal is not None and not explanation.guardrails.available,
    )

"""One reading of a decision: a fresh outcome and its logged record give the same answer (pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain.decision import Decision, Execution, FiredRule, Outcome, Proposal, Verdict, Violation
from service.usecases.answers import of_outcome, of_record


def violation(policy_id: str) -> Violation:
    return Violation("guardrails.ops.min_confidence", policy_id, "deny", "t", "m", "high")


def outcome(*, available: bool = True, with_proposal: bool = True) -> Outcome:
    fired = [FiredRule("retry-after-failure", "t", "rules/ops.yaml", 40, 30, True),
             FiredRule("dispatch", "t", "rules/ops.yaml", 50, 10, False)]  # fmt: skip
    proposal = Proposal("OPS.RETRY", 0.55, "normal", [{"type": "RETRY"}], ["retry-after-failure"])
    verdict = Verdict(available, violations=[violation("OPS-MIN-CONFIDENCE")] * 2 if available else [])
    return Outcome(
        decision=Decision("OPS.ESCALATE", 0.55, "normal", [{"type": "RETRY"}]),
        execution=Execution("ESCALATED", [{"type": "OPEN_INCIDENT"}]),
        fired_rules=fired,
        proposal=proposal if with_proposal else None,
        verdict=verdict,
        summary="s",
    )


def record_of(decided: Outcome) -> dict[str, Any]:
    """The parts of a log record the answer reads, as the log stores them (plain JSON values)."""
    return msgspec.to_builtins({
        "decision": decided.decision, "execution": decided.execution, "fired_rules": decided.fired_rules,
        "proposal": decided.proposal, "guardrails": {"available": decided.verdict.available,
                                                     "violations": decided.verdict.violations},
    })  # fmt: skip


def test_an_outcome_and_its_logged_record_read_the_same() -> None:
    decided = outcome()
    answer = of_outcome(decided)
    assert of_record(record_of(decided)) == answer
    assert (answer.fired, answer.winners, answer.violations) == (
        ["retry-after-failure", "dispatch"],
        ["retry-after-failure"],
        ["OPS-MIN-CONFIDENCE"],
    )
    assert not answer.no_verdict


def test_won_is_the_list_under_collect_and_the_one_winner_under_first() -> None:
    answer = of_outcome(outcome())
    assert answer.won("collect") == ["retry-after-failure"]
    assert answer.won("first") == "retry-after-failure"
    assert msgspec.structs.replace(answer, winners=[]).won("first") is None
    assert answer.case_values("first")["won"] == "retry-after-failure"


def test_no_verdict_only_when_a_proposal_went_without_one() -> None:
    assert of_outcome(outcome(available=False)).no_verdict
    assert of_record(record_of(outcome(available=False))).no_verdict
    assert not of_outcome(outcome(available=False, with_proposal=False)).no_verdict  # OPA was never asked

"""One reading of a decision: a fresh outcome and its logged record give the same answer (pure)."""

from __future__ import annotations

import msgspec

from service.domain.decision import (
    Decision,
    Execution,
    FiredRule,
    GuardrailsReport,
    Outcome,
    Proposal,
    RulesetRef,
    Verdict,
    Violation,
)
from service.domain.record import DecisionRecord, canonical


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


def record_of(decided: Outcome) -> DecisionRecord:
    """The log record of an outcome, read back from its canonical body as the log stores it."""
    record = DecisionRecord(
        decision_id="d1", created_at="2026-11-21T10:00:00.000000+00:00", caller="c", run_id="r", agent="a",
        ruleset=RulesetRef("ops", "v1", "rules/ops.yaml"), bundle_revision="b1", facts={},
        fired_rules=decided.fired_rules, proposal=decided.proposal, guardrails=GuardrailsReport.of(decided.verdict),
        decision=decided.decision, execution=decided.execution, summary=decided.summary, error=None,
        latency_ms={"total": 1.0},
    )  # fmt: skip
    return msgspec.json.decode(canonical(record), type=DecisionRecord)


def test_an_outcome_and_its_logged_record_read_the_same() -> None:
    decided = outcome()
    answer = decided.answer()
    assert record_of(decided).answer() == answer
    assert (answer.fired, answer.winners, answer.violations) == (
        ["retry-after-failure", "dispatch"],
        ["retry-after-failure"],
        ["OPS-MIN-CONFIDENCE"],
    )
    assert not answer.no_verdict


def test_won_is_the_list_under_collect_and_the_one_winner_under_first() -> None:
    answer = outcome().answer()
    assert answer.won("collect") == ["retry-after-failure"]
    assert answer.won("first") == "retry-after-failure"
    assert msgspec.structs.replace(answer, winners=[]).won("first") is None
    assert answer.case_values("first")["won"] == "retry-after-failure"


def test_no_verdict_only_when_a_proposal_went_without_one() -> None:
    assert outcome(available=False).answer().no_verdict
    assert record_of(outcome(available=False)).answer().no_verdict
    assert not outcome(available=False, with_proposal=False).answer().no_verdict  # OPA was never asked

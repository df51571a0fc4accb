"""From fired rules to a proposal, and from a proposal and a verdict to the final decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from service.domain.decision import (
    Decision,
    FiredRule,
    Outcome,
    Proposal,
    Verdict,
    Violation,
    decide,
    fired_rules,
    propose,
)
from service.domain.ruleset import Rule, Ruleset

FactsFactory = Callable[..., dict[str, Any]]

ALLOW = Verdict(available=True, allow=True)


def rule(ruleset: Ruleset, rule_id: str) -> Rule:
    [found] = [r for r in ruleset.rules if r.id == rule_id]
    return found


def proposal_of(ruleset: Ruleset, facts: dict[str, Any], *rule_ids: str) -> Proposal:
    result = propose(ruleset, facts, [rule(ruleset, rule_id) for rule_id in rule_ids])
    assert result is not None
    return result


def violation(policy: str, message: str = "not allowed") -> Violation:
    return Violation(policy=policy, id=f"{policy}/deny", rule="deny", title="Denied", message=message, severity="high")


@pytest.fixture
def facts(make_facts: FactsFactory) -> dict[str, Any]:
    """The valid example as decoded: dispatch would win for it."""
    return make_facts({"candidates": []})


@pytest.fixture
def decide_dispatch(ops: Ruleset, facts: dict[str, Any]) -> Callable[[Verdict], Outcome]:
    """Decide the example's dispatch proposal under a given verdict."""
    fired = [FiredRule("dispatch", "Dispatch to the resource", "rules/ops.yaml", 123, 10, True)]

    def run(verdict: Verdict) -> Outcome:
        return decide(ops, facts, fired, proposal_of(ops, facts, "dispatch"), verdict)

    return run


def incident(reason: str) -> dict[str, Any]:
    return {"type": "OPEN_INCIDENT", "autonomy": "L0", "resource_id": "worker-001", "reason": reason}


# --- decide ------------------------------------------------------------------


def test_an_allowed_proposal_is_approved_as_proposed(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    outcome = decide_dispatch(ALLOW)
    dispatch = [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}]
    assert outcome.decision == Decision("OPS.DISPATCH", 0.85, "NORMAL", dispatch)
    assert (outcome.execution.status, outcome.execution.actions) == ("APPROVED", dispatch)
    assert outcome.summary == (
        "Rule dispatch (rules/ops.yaml:123) proposed OPS.DISPATCH with confidence 0.85; guardrails allowed it."
    )


def test_a_violation_turns_the_proposal_into_one_incident(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    verdict = Verdict(available=True, allow=False, violations=[violation("ops.capacity_guard", "no spare capacity")])
    outcome = decide_dispatch(verdict)
    assert outcome.decision == Decision("OPS.ESCALATE", 0.85, "NORMAL", [incident("denied by ops.capacity_guard")])
    assert outcome.execution.status == "ESCALATED"
    assert outcome.execution.actions == [incident("denied by ops.capacity_guard")]
    assert outcome.summary.endswith(
        "but guardrails denied it (ops.capacity_guard: no spare capacity); escalated to a human."
    )


def test_a_violation_denies_even_when_allow_is_set(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    outcome = decide_dispatch(Verdict(available=True, allow=True, violations=[violation("ops.retry_limit")]))
    assert outcome.decision.proposed_actions == [incident("denied by ops.retry_limit")]
    assert outcome.execution.status == "ESCALATED"


def test_the_reason_names_each_denying_policy_once(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    policies = ["ops.retry_limit", "ops.capacity_guard", "ops.retry_limit"]
    outcome = decide_dispatch(Verdict(available=True, violations=[violation(p) for p in policies]))
    assert outcome.decision.proposed_actions[0]["reason"] == "denied by ops.retry_limit, ops.capacity_guard"


def test_a_verdict_without_allow_is_a_denial(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    outcome = decide_dispatch(Verdict(available=True, allow=False))
    assert outcome.decision.proposed_actions == [incident("denied by the guardrails")]
    assert outcome.execution.status == "ESCALATED"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("opa timed out after 0.5s", "guardrails unavailable: opa timed out after 0.5s"),
        (None, "guardrails unavailable: no verdict"),
    ],
)
def test_no_verdict_fails_closed(decide_dispatch: Callable[[Verdict], Outcome], error: str | None, reason: str) -> None:
    outcome = decide_dispatch(Verdict(available=False, error=error))
    assert outcome.decision == Decision("OPS.ESCALATE", 0.85, "NORMAL", [incident(reason)])
    assert outcome.execution.status == "ESCALATED"
    assert outcome.summary.endswith("escalated to a human (fail closed).")


def test_a_required_approval_holds_the_proposal(decide_dispatch: Callable[[Verdict], Outcome]) -> None:
    verdict = Verdict(
        available=True,
        allow=True,
        requires_approval=True,
        approvals=[violation("ops.big_orgs", "org 0 needs a second pair of eyes")],
    )
    outcome = decide_dispatch(verdict)
    assert outcome.decision.decision_type == "OPS.DISPATCH"
    assert outcome.execution.status == "PENDING_APPROVAL"
    assert outcome.summary.endswith("; it waits for human approval (org 0 needs a second pair of eyes).")


def test_an_allowed_escalation_is_reported_as_escalated(ops: Ruleset, make_facts: FactsFactory) -> None:
    facts = make_facts({"process.attempts": 3, "candidates": []})
    proposal = proposal_of(ops, facts, "escalate-attempts")
    fired = [FiredRule("escalate-attempts", "Too many attempts", "rules/ops.yaml", 63, 50, True)]
    outcome = decide(ops, facts, fired, proposal, ALLOW)
    assert outcome.decision == Decision("OPS.ESCALATE", 0.95, "NORMAL", [incident("attempts 3 reached max_attempts 3")])
    assert outcome.execution.status == "ESCALATED"


def test_without_a_proposal_the_decision_escalates_with_priority_from_the_facts(
    ops: Ruleset, make_facts: FactsFactory
) -> None:
    facts = make_facts({"process.sla": 1, "history.latency": 5000, "candidates": []})
    outcome = decide(ops, facts, [], None, ALLOW)
    assert outcome.decision == Decision("OPS.ESCALATE", 0.0, "HIGH", [incident("no rule matched these facts")])
    assert outcome.execution.status == "ESCALATED"
    assert outcome.summary == "Escalated to a human: no rule matched these facts."


def test_a_rule_error_escalates_with_the_error_as_reason(ops: Ruleset, facts: dict[str, Any]) -> None:
    outcome = decide(ops, facts, [], None, Verdict(available=False, error="not consulted"), error="engine lost it")
    assert outcome.decision.proposed_actions == [incident("the rules could not decide: engine lost it")]
    assert (outcome.execution.status, outcome.error) == ("ESCALATED", "engine lost it")


# --- fired rules and propose -------------------------------------------------


def test_fired_rules_are_ordered_by_priority_and_first_hit_picks_the_highest(ops: Ruleset) -> None:
    fired, winners = fired_rules(ops, ["dispatch", "retry-after-failure", "escalate-failures"])
    assert [r.id for r in fired] == ["escalate-failures", "retry-after-failure", "dispatch"]
    assert [r.id for r in winners] == ["escalate-failures"]


def test_ids_that_are_not_in_the_ruleset_are_ignored(ops: Ruleset) -> None:
    assert fired_rules(ops, ["no-such-rule"]) == ([], [])


def test_collect_hit_policy_proposes_every_fired_rule(ops: Ruleset, make_facts: FactsFactory) -> None:
    collect = msgspec.structs.replace(ops, hit_policy="collect")
    fired, winners = fired_rules(collect, ["dispatch", "retry-after-failure"])
    assert [r.id for r in winners] == ["retry-after-failure", "dispatch"]
    proposal = propose(collect, make_facts({"history.failures": 1, "candidates": []}), winners)
    assert proposal == Proposal(
        decision_type="OPS.RETRY",
        confidence=0.7,
        priority="NORMAL",
        actions=[
            {"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 60},
            {"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"},
        ],
        rules=["retry-after-failure", "dispatch"],
    )


def test_no_winner_means_no_proposal(ops: Ruleset, facts: dict[str, Any]) -> None:
    assert propose(ops, facts, []) is None


@pytest.mark.parametrize(
    ("rule_id", "attempts", "failures", "confidence"),
    [
        ("dispatch", 1, 0, 0.85),
        ("dispatch", 0, 0, 0.9),
        ("retry-after-failure", 1, 1, 0.7),
        ("retry-after-failure", 2, 1, 0.65),
        ("reassign-unavailable", 1, 1, 0.65),
        ("escalate-attempts", 3, 0, 0.95),
        ("retry-after-failure", 5, 9, 0.0),
    ],
)
def test_confidence_is_rounded_to_two_places_and_clamped(
    ops: Ruleset, make_facts: FactsFactory, rule_id: str, attempts: int, failures: int, confidence: float
) -> None:
    facts = make_facts({"process.attempts": attempts, "history.failures": failures, "candidates": []})
    assert proposal_of(ops, facts, rule_id).confidence == confidence


@pytest.mark.parametrize(
    ("attempts", "backoff"),
    [(0, 30), (1, 60), (2, 120), (4, 480), (5, 900), (10, 900)],
)
def test_retry_backoff_doubles_per_attempt_up_to_the_cap(
    ops: Ruleset, make_facts: FactsFactory, attempts: int, backoff: int
) -> None:
    facts = make_facts({"process.attempts": attempts, "history.failures": 1, "candidates": []})
    assert proposal_of(ops, facts, "retry-after-failure").actions == [
        {"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": backoff}
    ]


def candidate(resource_id: str, capacity: int, status: str = "available") -> dict[str, Any]:
    return {"id": resource_id, "capacity": capacity, "status": status}


@pytest.mark.parametrize(
    ("candidates", "target"),
    [
        pytest.param(
            [candidate("w-a", 10), candidate("w-b", 50), candidate("w-c", 90, "offline")], "w-b", id="most-capacity"
        ),
        pytest.param([candidate("w-9", 40), candidate("w-3", 40), candidate("w-5", 20)], "w-3", id="tie-lowest-id"),
        pytest.param([candidate("worker-001", 500), candidate("w-2", 5)], "w-2", id="not-the-current-resource"),
        pytest.param([candidate("w-1", 0), candidate("w-2", 80, "overloaded")], None, id="none-eligible"),
        pytest.param([], None, id="no-candidates"),
    ],
)
def test_reassign_targets_the_best_available_candidate(
    ops: Ruleset, make_facts: FactsFactory, candidates: list[dict[str, Any]], target: str | None
) -> None:
    facts = make_facts({"resource.status": "offline", "candidates": candidates})
    proposal = proposal_of(ops, facts, "reassign-unavailable")
    assert proposal.decision_type == "OPS.REASSIGN"
    assert proposal.actions == [
        {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": target}
    ]


@pytest.mark.parametrize(
    ("latency", "priority"),
    [(5000, "HIGH"), (1000.5, "HIGH"), (1000, "NORMAL"), (999, "NORMAL"), (0, "NORMAL")],
)
def test_priority_is_high_only_when_latency_exceeds_the_sla(
    ops: Ruleset, make_facts: FactsFactory, latency: float, priority: str
) -> None:
    facts = make_facts({"process.sla": 1, "history.latency": latency, "candidates": []})
    assert proposal_of(ops, facts, "dispatch").priority == priority

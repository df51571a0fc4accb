"""The rule docs/rulesets.md states for every ruleset, checked on every ruleset in rules/: a proposal
whose decision type is the ruleset's escalation ends ESCALATED, whether the guardrails allow it (its own
actions) or deny it (the escalation's action); only an approval guardrail holds it PENDING_APPROVAL."""

from __future__ import annotations

import pytest

from service.authoring.rulesets import load_ruleset
from service.domain import decision as dec
from service.domain.decision import FiredRule, Proposal, Verdict, Violation
from service.domain.ruleset import Ruleset
from tests.conftest import RULES_DIR

RULESETS = sorted(RULES_DIR.glob("*.yaml"))


def finding(kind: str) -> Violation:
    return Violation(policy=f"probe.{kind}", id=kind, rule=kind, title=kind, message=f"a {kind}", severity="high")


@pytest.fixture(params=RULESETS, ids=lambda path: path.stem)
def ruleset(request: pytest.FixtureRequest) -> Ruleset:
    path = request.param
    return load_ruleset(path, f"rules/{path.name}", [])


def escalating(ruleset: Ruleset) -> tuple[Proposal, list[FiredRule]]:
    action = {"type": "PROPOSED_BY_A_RULE", "autonomy": "L0"}
    proposal = Proposal(ruleset.escalation_decision, 0.9, "NORMAL", [action], ["some-rule"])
    return proposal, [FiredRule("some-rule", "Some rule", f"rules/{ruleset.name}.yaml", 1, 10, True)]


def test_an_allowed_proposal_of_the_escalation_decision_ends_escalated_with_its_own_actions(ruleset: Ruleset) -> None:
    proposal, fired = escalating(ruleset)
    outcome = dec.decide(ruleset, {}, fired, proposal, Verdict(available=True, allow=True))
    assert outcome.execution.status == "ESCALATED"
    assert outcome.decision.decision_type == ruleset.escalation_decision
    assert outcome.execution.actions == [{"type": "PROPOSED_BY_A_RULE", "autonomy": "L0"}]


def test_a_denied_proposal_of_the_escalation_decision_ends_escalated_with_the_escalation(ruleset: Ruleset) -> None:
    proposal, fired = escalating(ruleset)
    outcome = dec.decide(ruleset, {}, fired, proposal, Verdict(available=True, violations=[finding("deny")]))
    assert (outcome.execution.status, outcome.decision.decision_type) == ("ESCALATED", ruleset.escalation_decision)
    [action] = outcome.execution.actions
    assert action["type"] == ruleset.escalation_action.type and action["reason"] == "denied by probe.deny"


def test_an_approval_guardrail_holds_even_an_escalation_proposal_for_a_person(ruleset: Ruleset) -> None:
    proposal, fired = escalating(ruleset)
    verdict = Verdict(available=True, allow=True, requires_approval=True, approvals=[finding("approval")])
    assert dec.decide(ruleset, {}, fired, proposal, verdict).execution.status == "PENDING_APPROVAL"

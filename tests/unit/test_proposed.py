"""Proposals made elsewhere against the shipped ops ruleset (pure): what is checked, what the guardrails
see, the rules' second opinion, the hold on disagreement; and the records of decisions made elsewhere."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from service.domain.decision import Proposal, Verdict
from service.domain.proposed import (
    ExternalDecision,
    ProposedDecision,
    Proposer,
    RulesWould,
    action_autonomy,
    as_proposal,
    check,
    on_disagreement,
    rules_would,
)
from service.domain.record import ExternalRecord, Record, canonical, columns
from service.domain.ruleset import Ruleset
from service.errors import InvalidBody

FACTS = {
    "org_id": 7,
    "process": {"type": "ORDER_PROCESSING", "sla": 1, "attempts": 0},
    "resource": {"id": "w1", "capacity": 1, "status": "available"},
    "history": {"failures": 0, "latency": 5000},
}


def proposed(decision_type: str = "OPS.DISPATCH", *actions: dict[str, Any]) -> ProposedDecision:
    return ProposedDecision(decision_type, 0.9, list(actions) or [{"type": "TRIGGER_PROCESS", "resource_id": "w1"}])


def test_each_action_type_gets_the_autonomy_of_the_first_rule_proposing_it(ops: Ruleset) -> None:
    assert action_autonomy(ops) == {"OPEN_INCIDENT": "L0", "REASSIGN": "L2", "RETRY": "L1", "TRIGGER_PROCESS": "L2"}


def test_the_guardrails_see_the_ruleset_autonomy_unless_sent_and_the_facts_priority(ops: Ruleset) -> None:
    sent = proposed("OPS.RETRY", {"type": "RETRY", "resource_id": "w1"}, {"type": "RETRY", "autonomy": "L4"})
    assert as_proposal(ops, FACTS, sent) == Proposal(
        "OPS.RETRY", 0.9, "HIGH",  # latency 5000 ms over an sla of 1 s
        [{"autonomy": "L1", "type": "RETRY", "resource_id": "w1"}, {"type": "RETRY", "autonomy": "L4"}], [],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sent", "paths"),
    [
        (proposed("OPS.REBOOT"), ["proposal.decision_type"]),
        (proposed("OPS.DISPATCH", {"type": "TRIGGER_PROCESS"}, {"type": "REBOOT"}, {"no": "type"}),
         ["proposal.actions[1].type", "proposal.actions[2].type"]),
        (proposed("OPS.REBOOT", {"type": "REBOOT"}), ["proposal.decision_type", "proposal.actions[0].type"]),
    ],
)  # fmt: skip
def test_what_the_ruleset_does_not_know_is_422_naming_every_field(
    ops: Ruleset, sent: ProposedDecision, paths: list[str]
) -> None:
    with pytest.raises(InvalidBody) as raised:
        check(ops, sent)
    assert [p.path for p in raised.value.problems] == paths


def test_a_confidence_outside_0_1_is_refused_by_the_type() -> None:
    body = b'{"decision_type": "OPS.DISPATCH", "confidence": 1.01, "actions": []}'
    with pytest.raises(msgspec.ValidationError, match=r"<= 1.0 - at `\$.confidence`"):
        msgspec.json.decode(body, type=ProposedDecision)


def test_the_rules_agree_on_the_same_decision_type_whatever_the_confidence() -> None:
    own = Proposal("OPS.DISPATCH", 0.85, "NORMAL", [], ["dispatch"])
    assert rules_would(own, proposed()) == RulesWould("OPS.DISPATCH", 0.85, ["dispatch"], agrees=True)
    assert rules_would(None, proposed()) == RulesWould(None, None, [], agrees=False)


def test_a_disagreement_requires_approval_only_where_the_ruleset_says_so(ops: Ruleset) -> None:
    allowed = Verdict(available=True, allow=True)
    disagree = RulesWould("OPS.RETRY", 0.7, ["retry-after-failure"], agrees=False)
    assert on_disagreement(ops, allowed, disagree, "OPS.DISPATCH") is allowed
    strict = msgspec.structs.replace(ops, params={**ops.params, "require_approval_on_disagreement": True})
    held = on_disagreement(strict, allowed, disagree, "OPS.DISPATCH")
    assert held.requires_approval and [a.id for a in held.approvals] == ["RULES-DISAGREE"]
    assert held.approvals[0].message == "the rules would propose OPS.RETRY, not OPS.DISPATCH"
    agree = RulesWould("OPS.DISPATCH", 0.9, ["dispatch"], agrees=True)
    assert on_disagreement(strict, allowed, agree, "OPS.DISPATCH") is allowed
    no_verdict = Verdict(available=False, error="timeout")
    assert on_disagreement(strict, no_verdict, disagree, "OPS.DISPATCH") is no_verdict  # still fails closed


def test_the_proposer_is_named_with_its_model_and_version() -> None:
    assert Proposer("copilot", "gpt-x", "7").describe() == "copilot (gpt-x 7)"
    assert Proposer("copilot").describe() == "copilot"


def test_an_external_record_is_its_own_kind_indexed_by_its_ruleset_type_status_and_org() -> None:
    external = ExternalDecision("OPS.REASSIGN", "EXECUTED", ruleset="ops", facts={"org_id": 7}, reference="b-1")
    record = ExternalRecord(decision_id="e1", created_at="t", caller="batch", external=external)
    body = canonical(record)
    assert body.startswith('{"caller":"batch","created_at":"t","decision_id":"e1","external":{')
    assert '"kind":"external"' in body
    read = msgspec.json.decode(body, type=Record)
    assert read == record and read.kind == "external"
    cols = columns(read)
    assert (cols.kind, cols.ruleset, cols.decision_type, cols.execution_status, cols.org_id) == (
        "external", "ops", "OPS.REASSIGN", "EXECUTED", "7",
    )  # fmt: skip
    assert cols.fired == () and cols.denied == ()

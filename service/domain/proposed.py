"""Proposals made elsewhere (an AI agent, a script, another service): who proposed, what, and how the
ruleset's own rules see it.  Pure: checked against the ruleset, turned into the same ``Proposal`` the
rules make, so the guardrails and the outcome rules treat it exactly as one of opsgate's own.

Also the decisions made and executed elsewhere that are only recorded (``POST /v1/policy/decisions``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from service.domain.decision import Proposal, RuleOutputError, Verdict, Violation, priority_flag, scope
from service.domain.ruleset import Ruleset
from service.errors import InvalidBody, Problem

#: the ruleset param that makes a proposal the rules disagree with wait for a person
DISAGREEMENT_PARAM = "require_approval_on_disagreement"

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class Proposer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who proposed: the agent, its model and version; anything else under ``details``."""

    agent: _Name
    model: str = ""
    version: str = ""
    details: dict[str, Any] = {}

    def describe(self) -> str:
        """``agent (model version)``, as summaries and pages name it."""
        about = " ".join(part for part in (self.model, self.version) if part)
        return f"{self.agent} ({about})" if about else self.agent


class ProposedDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A proposal as sent: its decision type, confidence and actions (each ``{"type": ..., ...}``)."""

    decision_type: _Name
    confidence: _Confidence
    actions: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=100)]


class RulesWould(msgspec.Struct, frozen=True):
    """The ruleset's own rules on the same facts, as a second opinion: what they would propose
    (None: no rule matched, or their output failed) and whether the proposal agrees (same decision type)."""

    decision_type: str | None
    confidence: float | None
    rules: list[str]
    agrees: bool


def action_autonomy(ruleset: Ruleset) -> dict[str, str]:
    """Each action type the ruleset knows, with the autonomy it gives it: that of the first rule
    proposing it (file order), the escalation's for the escalation action."""
    known: dict[str, str] = {}
    for rule in sorted(ruleset.rules, key=lambda r: r.order):
        for action in rule.actions:
            known.setdefault(action.type, rule.autonomy)
    known.setdefault(ruleset.escalation_action.type, ruleset.escalation_autonomy)
    return known


def decision_types(ruleset: Ruleset) -> set[str]:
    """The decision types the ruleset's rules and its escalation can decide."""
    return {rule.decision for rule in ruleset.rules} | {ruleset.escalation_decision}


def problems(ruleset: Ruleset, proposed: ProposedDecision) -> list[Problem]:
    """What in ``proposed`` the ruleset does not know: its decision type, an action's type."""
    found: list[Problem] = []
    types = decision_types(ruleset)
    if proposed.decision_type not in types:
        reason = f"{proposed.decision_type!r} is not a decision type of ruleset {ruleset.name!r} ({_listed(types)})"
        found.append(Problem(reason, path="proposal.decision_type"))
    known = action_autonomy(ruleset)
    for index, action in enumerate(proposed.actions):
        kind = action.get("type")
        if kind not in known:
            reason = f"{kind!r} is not an action type of ruleset {ruleset.name!r} ({_listed(known)})"
            found.append(Problem(reason, path=f"proposal.actions[{index}].type"))
    return found


def check(ruleset: Ruleset, proposed: ProposedDecision) -> None:
    """422 ``invalid_request`` naming every field of ``proposed`` the ruleset does not know."""
    found = problems(ruleset, proposed)
    if found:
        raise InvalidBody(f"invalid proposal: {found[0].path}: {found[0].reason}", found)


def _listed(names: Any) -> str:
    return "one of " + ", ".join(sorted(names))


def as_proposal(ruleset: Ruleset, facts: dict[str, Any], proposed: ProposedDecision) -> Proposal:
    """``proposed`` as the guardrails see the rules' proposals: each action with an ``autonomy``
    (the one the ruleset gives its type, unless sent), the priority flag of the facts, no rules."""
    known = action_autonomy(ruleset)
    actions = [{"autonomy": known[str(action["type"])], **action} for action in proposed.actions]
    try:
        priority = priority_flag(ruleset, scope(ruleset, facts))
    except RuleOutputError:
        priority = "NORMAL"
    return Proposal(proposed.decision_type, round(proposed.confidence, 2), priority, actions, [])


def rules_would(own: Proposal | None, proposed: ProposedDecision) -> RulesWould:
    """The rules' proposal beside ``proposed``."""
    if own is None:
        return RulesWould(None, None, [], agrees=False)
    return RulesWould(own.decision_type, own.confidence, own.rules, own.decision_type == proposed.decision_type)


def on_disagreement(ruleset: Ruleset, verdict: Verdict, would: RulesWould, proposed: str) -> Verdict:
    """The verdict, made to require approval when the rules disagree and the ruleset's
    ``require_approval_on_disagreement`` param is true (a verdict that is no verdict stays one)."""
    if would.agrees or ruleset.params.get(DISAGREEMENT_PARAM) is not True or not verdict.available:
        return verdict
    message = f"the rules would propose {would.decision_type or 'nothing'}, not {proposed}"
    held = Violation(
        policy=f"params.{DISAGREEMENT_PARAM}",
        id="RULES-DISAGREE",
        rule=DISAGREEMENT_PARAM,
        title="The ruleset's own rules disagree with the proposal",
        message=message,
        severity="medium",
        location=ruleset.file,
    )
    return msgspec.structs.replace(verdict, requires_approval=True, approvals=[*verdict.approvals, held])


class ExternalDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A decision made and executed elsewhere, recorded for audit only: opsgate neither decided nor
    guarded it.  ``status`` is what became of it there (e.g. EXECUTED); ``reference`` its id there."""

    decision_type: _Name
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ruleset: str | None = None
    confidence: _Confidence | None = None
    actions: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}
    proposer: Proposer | None = None
    decided_at: str | None = None
    reference: str | None = None

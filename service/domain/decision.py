"""From fired rules to a proposal, and from a proposal plus a verdict to a decision.

Pure: no engine, no OPA, no storage.  Fail closed lives here: without an
``allow`` verdict from the guardrails, the decision is the ruleset's escalation.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain import expr
from service.domain.ruleset import CompiledAction, Rule, Ruleset
from service.errors import ExpressionError, OpsgateError

APPROVED = "APPROVED"
ESCALATED = "ESCALATED"
PENDING_APPROVAL = "PENDING_APPROVAL"


class FiredRule(msgspec.Struct, frozen=True):
    id: str
    title: str
    file: str
    line: int
    priority: int
    won: bool


class Proposal(msgspec.Struct, frozen=True):
    decision_type: str
    confidence: float
    priority: str
    actions: list[dict[str, Any]]
    rules: list[str]


class Violation(msgspec.Struct, frozen=True):
    policy: str
    id: str
    rule: str
    title: str
    message: str
    severity: str
    action_index: int | None = None
    location: str | None = None


class Verdict(msgspec.Struct, frozen=True):
    """What the guardrails said; ``available=False`` means no verdict at all."""

    available: bool
    allow: bool = False
    violations: list[Violation] = []
    requires_approval: bool = False
    approvals: list[Violation] = []
    revision: str = ""
    error: str | None = None
    breaker: str | None = None  # the OPA circuit breaker's state when asked (closed | open | half_open)


class RulesetRef(msgspec.Struct, frozen=True):
    name: str
    version: str
    file: str


class GuardrailsReport(msgspec.Struct, frozen=True):
    """The verdict as a decision's explanation and its record carry it."""

    available: bool
    allow: bool
    violations: list[Violation]
    requires_approval: bool
    approvals: list[Violation]
    revision: str
    error: str | None = None
    breaker: str | None = None  # the OPA circuit breaker's state when asked; None: not asked

    @classmethod
    def of(cls, verdict: Verdict) -> GuardrailsReport:
        return cls(
            available=verdict.available,
            allow=verdict.available and verdict.allow,
            violations=verdict.violations,
            requires_approval=verdict.requires_approval,
            approvals=verdict.approvals,
            revision=verdict.revision,
            error=verdict.error,
            breaker=verdict.breaker,
        )


class WhyNot(msgspec.Struct, frozen=True):
    """Why a rule did not fire: the first of its conditions that was false, with the values read."""

    id: str
    title: str
    file: str
    line: int
    condition: str
    values: dict[str, Any]
    reason: str


class Decision(msgspec.Struct, frozen=True):
    decision_type: str
    confidence: float
    priority: str
    proposed_actions: list[dict[str, Any]]


class Execution(msgspec.Struct, frozen=True):
    status: str
    actions: list[dict[str, Any]]


class Outcome(msgspec.Struct, frozen=True):
    """The final word on one request, before it is logged and answered."""

    decision: Decision
    execution: Execution
    fired_rules: list[FiredRule]
    proposal: Proposal | None
    verdict: Verdict
    summary: str
    error: str | None = None

    def answer(self) -> Answer:
        return answer(self.decision, self.execution, self.fired_rules, self.proposal, self.verdict)


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What one decision answered, as replay, shadow and rule tests compare it."""

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


def answer(
    decision: Decision,
    execution: Execution,
    fired: list[FiredRule],
    proposal: Proposal | None,
    guardrails: Verdict | GuardrailsReport,
) -> Answer:
    """The comparable view of a decision, from the parts an outcome, a response and a record share."""
    return Answer(
        decision_type=decision.decision_type,
        confidence=decision.confidence,
        fired=[rule.id for rule in fired],
        winners=[rule.id for rule in fired if rule.won],
        violations=sorted({violation.id for violation in guardrails.violations}),
        execution_status=execution.status,
        actions=execution.actions,
        no_verdict=proposal is not None and not guardrails.available,
    )


class RuleOutputError(OpsgateError):
    """A rule's output expression failed for these facts: the decision escalates, never a 500."""

    code = "rule_output_error"


def scope(ruleset: Ruleset, facts: dict[str, Any]) -> dict[str, Any]:
    return {**facts, "params": ruleset.params}


def fired_rules(ruleset: Ruleset, fired_ids: list[str]) -> tuple[list[Rule], list[Rule]]:
    """(every fired rule by priority, the winners under the hit policy)."""
    wanted = set(fired_ids)
    fired = sorted((r for r in ruleset.rules if r.id in wanted), key=lambda r: (-r.priority, r.order))
    winners = fired if ruleset.hit_policy == "collect" else fired[:1]
    return fired, winners


def propose(ruleset: Ruleset, facts: dict[str, Any], winners: list[Rule]) -> Proposal | None:
    """The winners' outputs; None when no rule fired."""
    if not winners:
        return None
    values = scope(ruleset, facts)
    actions = [_action(action, rule.autonomy, values) for rule in winners for action in rule.actions]
    confidence = min(_confidence(rule, values) for rule in winners)
    return Proposal(winners[0].decision, confidence, priority_flag(ruleset, values), actions, [r.id for r in winners])


def priority_flag(ruleset: Ruleset, values: dict[str, Any]) -> str:
    for condition, flag in ruleset.priority:
        if _eval(condition, values, "priority"):
            return flag
    return "NORMAL"


def _confidence(rule: Rule, values: dict[str, Any]) -> float:
    value = _eval(rule.confidence.node, values, f"rule {rule.id} confidence")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RuleOutputError(f"rule {rule.id}: confidence is {value!r}, not a number")
    return round(min(1.0, max(0.0, float(value))), 2)


def _action(action: CompiledAction, autonomy: str, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": action.type, "autonomy": autonomy}
    for name, output in action.fields:
        out[name] = _eval(output.node, values, f"action {action.type}.{name}")
    return out


def _eval(node: expr.Node, values: dict[str, Any], what: str) -> Any:
    try:
        return expr.evaluate(node, values)
    except ExpressionError as error:
        raise RuleOutputError(f"{what}: {error.reason}") from error


def decide(
    ruleset: Ruleset,
    facts: dict[str, Any],
    fired: list[FiredRule],
    proposal: Proposal | None,
    verdict: Verdict,
    error: str | None = None,
    by: str | None = None,
) -> Outcome:
    """Apply the verdict: approve, hold for approval, or escalate (fail closed).  ``by``: who made the
    proposal when not the rules (a proposal made elsewhere), as the summary names it."""
    reason = _escalation_reason(ruleset, proposal, verdict, error)
    if reason is not None:
        decision = escalation(ruleset, facts, proposal, reason)
        summary = _summary_escalated(fired, proposal, verdict, reason, by)
        return Outcome(
            decision, Execution(ESCALATED, decision.proposed_actions), fired, proposal, verdict, summary, error
        )
    assert proposal is not None
    decision = Decision(proposal.decision_type, proposal.confidence, proposal.priority, proposal.actions)
    if verdict.requires_approval:
        held = "; ".join(a.message for a in verdict.approvals) or "a guardrail requires approval"
        summary = f"{_because(fired, proposal, by)}; it waits for human approval ({held})."
        return Outcome(decision, Execution(PENDING_APPROVAL, proposal.actions), fired, proposal, verdict, summary)
    status = ESCALATED if proposal.decision_type == ruleset.escalation_decision else APPROVED
    summary = f"{_because(fired, proposal, by)}; guardrails allowed it."
    return Outcome(decision, Execution(status, proposal.actions), fired, proposal, verdict, summary)


def _escalation_reason(ruleset: Ruleset, proposal: Proposal | None, verdict: Verdict, error: str | None) -> str | None:
    if error is not None:
        return f"the rules could not decide: {error}"
    if proposal is None:
        return "no rule matched these facts"
    if not verdict.available:
        return f"guardrails unavailable: {verdict.error or 'no verdict'}"
    if verdict.violations or not verdict.allow:
        policies = ", ".join(dict.fromkeys(v.policy for v in verdict.violations)) or "the guardrails"
        return f"denied by {policies}"
    return None


def escalation(ruleset: Ruleset, facts: dict[str, Any], proposal: Proposal | None, reason: str) -> Decision:
    """The ruleset's safe answer: a single escalation action carrying the reason."""
    values = scope(ruleset, facts)
    action: dict[str, Any] = {"type": ruleset.escalation_action.type, "autonomy": ruleset.escalation_autonomy}
    for name, output in ruleset.escalation_action.fields:
        try:
            action[name] = expr.evaluate(output.node, values)
        except ExpressionError:
            action[name] = None
    action["reason"] = reason
    confidence = proposal.confidence if proposal else 0.0
    try:
        priority = proposal.priority if proposal else priority_flag(ruleset, values)
    except RuleOutputError:
        priority = "NORMAL"
    return Decision(ruleset.escalation_decision, confidence, priority, [action])


def _because(fired: list[FiredRule], proposal: Proposal, by: str | None = None) -> str:
    won = [f for f in fired if f.won]
    names = ", ".join(f"{f.id} ({f.file}:{f.line})" for f in won)
    word = "Rule" if len(won) == 1 else "Rules"
    who = by if by is not None else f"{word} {names}"
    return f"{who} proposed {proposal.decision_type} with confidence {proposal.confidence:g}"


def _summary_escalated(
    fired: list[FiredRule], proposal: Proposal | None, verdict: Verdict, reason: str, by: str | None = None
) -> str:
    if proposal is None:
        return f"Escalated to a human: {reason}."
    because = _because(fired, proposal, by)
    if verdict.available and not verdict.allow:
        denials = "; ".join(f"{v.policy}: {v.message}" for v in verdict.violations) or "no reason given"
        return f"{because}, but guardrails denied it ({denials}); escalated to a human."
    if not verdict.available:
        return f"{because}, but {reason}; escalated to a human (fail closed)."
    return f"{because}; guardrails allowed the escalation to a human."

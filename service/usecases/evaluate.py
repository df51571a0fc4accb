"""Guard a proposal made elsewhere (``POST /v1/policy/evaluate``): an agent proposes, opsgate guards.

The same pieces as a decision of opsgate's own (``service.usecases.decide``): the facts validated by the
ruleset's schema (by the caller, as for /decide), the same guardrails asked the same way, the same
outcome rules (denied: the ruleset's escalation; approval required: the same queue; else APPROVED),
the same record in the same log, with who proposed and what the ruleset's own rules would have
proposed (a second opinion, which can hold the decision for a person: ``proposed.DISAGREEMENT_PARAM``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain import decision as dec
from service.domain import proposed as prop
from service.domain.decision import Proposal, Verdict
from service.domain.proposed import ProposedDecision, Proposer, RulesWould
from service.domain.record import DecisionRecord
from service.domain.ruleset import Ruleset
from service.ports.tracing import TraceParent
from service.usecases.answer import Result
from service.usecases.decide import DecisionService
from service.usecases.timing import Timer, traced


class Evaluation(msgspec.Struct, frozen=True):
    """What one evaluate call returns: the /decide answer, with who proposed and the rules' opinion."""

    agent: str
    result: Result
    proposer: Proposer
    rules_would: RulesWould


async def evaluate(
    service: DecisionService,
    ruleset: Ruleset,
    facts: dict[str, Any],
    proposed: ProposedDecision,
    proposer: Proposer,
    caller: str,
    *,
    started: float | None = None,
    parent: TraceParent | None = None,
) -> Evaluation:
    """Guard ``proposed`` (checked against ``ruleset``: 422 naming what it does not know) on validated
    ``facts``, log the decision with ``proposer`` and the rules' opinion, and answer."""
    prop.check(ruleset, proposed)
    timer = Timer(started)
    with traced(service.tracer, ruleset, timer, parent) as answers:
        timer.lap("decode")
        filled = await service.context.build_context(ruleset, facts)  # groups left out, from their providers
        timer.lap("context", keep=False)
        facts = filled.facts
        would = prop.rules_would(await service.rules_opinion(ruleset, facts, filled.error), proposed)
        timer.lap("rules")
        proposal = prop.as_proposal(ruleset, facts, proposed)
        verdict = await _verdict(service, ruleset, facts, proposal, filled.error)
        verdict = prop.on_disagreement(ruleset, verdict, would, proposed.decision_type)
        outcome = dec.decide(ruleset, facts, [], proposal, verdict, filled.error, by=proposer.describe())
        outcome = msgspec.structs.replace(outcome, summary=f"{outcome.summary} {_opinion(would)}")
        timer.lap("guardrails")

        def amend(record: DecisionRecord) -> DecisionRecord:
            return msgspec.structs.replace(record, proposer=proposer, rules_would=would)

        response = await service.log_outcome(ruleset, filled, outcome, caller, timer, answers, amend)
    return Evaluation(response.agent, response.result, proposer, would)


async def _verdict(
    service: DecisionService, ruleset: Ruleset, facts: dict[str, Any], proposal: Proposal, missing: str | None
) -> Verdict:
    """The guardrails' verdict; never asked on facts a context provider could not complete (``missing``:
    why), and the decision escalates with that reason (fail closed)."""
    if missing is not None:
        return Verdict(available=False, revision=service.guardrails.revision, error="not consulted")
    return await service.guard(ruleset, facts, proposal)


def _opinion(would: RulesWould) -> str:
    """The summary's last sentence: the rules' second opinion."""
    if would.decision_type is None:
        return "The ruleset's own rules propose nothing for these facts."
    if would.agrees:
        return f"The ruleset's own rules agree ({', '.join(would.rules)})."
    return (
        f"The ruleset's own rules would propose {would.decision_type} with confidence {would.confidence:g} "
        f"({', '.join(would.rules)})."
    )

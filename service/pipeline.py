"""One decision, end to end: facts -> rules -> proposal -> guardrails -> decision -> log.

The composition of the pure pieces with the three outside things (engine,
OPA, decision log); ``app.py`` and the CLI call ``DecisionService.decide``.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Protocol

import msgspec

from service import decision as dec
from service.catalog import Catalog
from service.decision import FiredRule, Outcome, Proposal, RuleOutputError, Verdict
from service.decision_log import DecisionLog, now
from service.engine import LoadedRuleset, RuleEngine
from service.errors import EngineError
from service.explain import WhyNot, why_not
from service.ruleset import Ruleset


class GuardrailsPort(Protocol):
    revision: str

    async def check(self, item: dict[str, Any]) -> Verdict: ...


class RulesetRef(msgspec.Struct, frozen=True):
    name: str
    version: str
    file: str


class GuardrailsReport(msgspec.Struct, frozen=True):
    available: bool
    allow: bool
    violations: list[dec.Violation]
    requires_approval: bool
    approvals: list[dec.Violation]
    revision: str
    error: str | None = None


class Explanation(msgspec.Struct, frozen=True):
    ruleset: RulesetRef
    fired_rules: list[FiredRule]
    proposal: Proposal | None
    guardrails: GuardrailsReport
    summary: str
    error: str | None = None
    not_fired: list[WhyNot] | msgspec.UnsetType = msgspec.UNSET  # only with ?explain=full


class Result(msgspec.Struct, frozen=True):
    decision: dec.Decision
    context: dict[str, Any]
    execution: dec.Execution
    decision_log_id: int
    run_id: str
    decision_id: str
    explanation: Explanation


class DecisionResponse(msgspec.Struct, frozen=True):
    agent: str
    result: Result
    status: str = "success"


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7)."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


class DecisionService:
    """Decides with the current catalog; every decision is logged before it is returned."""

    def __init__(
        self,
        catalog: Catalog,
        engine: RuleEngine,
        guardrails: GuardrailsPort,
        log: DecisionLog,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.guardrails = guardrails
        self.log = log
        self.loaded: dict[str, LoadedRuleset] = {name: engine.load(rs) for name, rs in catalog.rulesets.items()}

    async def decide(
        self, ruleset_name: str, body: bytes, caller: str, *, explain_full: bool = False
    ) -> DecisionResponse:
        """Decode ``body`` as the ruleset's facts and decide; 4xx errors raise before any work.

        ``explain_full`` adds why each rule that did not fire did not (computed only then)."""
        started = time.perf_counter()
        ruleset = self.catalog.get(ruleset_name)
        facts = ruleset.decoder.decode_json(body)
        return await self.decide_facts(ruleset, facts, caller, started=started, explain_full=explain_full)

    async def decide_facts(
        self,
        ruleset: Ruleset,
        facts: dict[str, Any],
        caller: str,
        *,
        started: float | None = None,
        explain_full: bool = False,
    ) -> DecisionResponse:
        """Decide on already validated facts, log the decision, and answer with its log id."""
        timer = _Timer(started)
        outcome = await self.evaluate(ruleset, facts, timer)
        explanation = self._explanation(ruleset, outcome)
        if explain_full:
            fired = {rule.id for rule in outcome.fired_rules}
            explanation = msgspec.structs.replace(explanation, not_fired=why_not(ruleset, facts, fired))
        result = Result(
            decision=outcome.decision,
            context=facts,
            execution=outcome.execution,
            decision_log_id=0,
            run_id=uuid.uuid4().hex,
            decision_id=uuid7(),
            explanation=explanation,
        )
        response = DecisionResponse(ruleset.agent, result)
        stored = await self.log.append(self._record(response, caller, timer.laps))
        return msgspec.structs.replace(response, result=msgspec.structs.replace(result, decision_log_id=stored.id))

    async def evaluate(self, ruleset: Ruleset, facts: dict[str, Any], timer: _Timer | None = None) -> Outcome:
        """Rules, proposal, guardrails and the final word, without logging (also used by replay)."""
        timer = timer or _Timer(None)
        timer.lap("decode")
        outcome = await self._outcome(ruleset, facts, timer)
        timer.lap("guardrails")
        return outcome

    async def _outcome(self, ruleset: Ruleset, facts: dict[str, Any], timer: _Timer) -> Outcome:
        fired: list[FiredRule] = []
        proposal: Proposal | None = None
        error: str | None = None
        try:
            fired_ids = await self.engine.match_async(self.loaded[ruleset.name], facts)
            all_fired, winners = dec.fired_rules(ruleset, fired_ids)
            won = {rule.id for rule in winners}
            fired = [FiredRule(r.id, r.title, r.file, r.line, r.priority, r.id in won) for r in all_fired]
            proposal = dec.propose(ruleset, facts, winners)
        except (EngineError, RuleOutputError) as failure:
            error = str(failure)
        timer.lap("rules")
        if proposal is None:  # nothing to approve: the guardrails are not asked
            verdict = Verdict(available=False, revision=self.guardrails.revision, error="not consulted")
            return dec.decide(ruleset, facts, fired, None, verdict, error=error)
        verdict = await self.guardrails.check(self._guardrail_input(ruleset, facts, proposal))
        return dec.decide(ruleset, facts, fired, proposal, verdict)

    @staticmethod
    def _guardrail_input(ruleset: Ruleset, facts: dict[str, Any], proposal: Proposal) -> dict[str, Any]:
        return {
            "ruleset": {"name": ruleset.name, "version": ruleset.version},
            "facts": facts,
            "proposal": {
                "decision_type": proposal.decision_type,
                "confidence": proposal.confidence,
                "priority": proposal.priority,
                "actions": proposal.actions,
                "rules": proposal.rules,
            },
        }

    def _explanation(self, ruleset: Ruleset, outcome: Outcome) -> Explanation:
        verdict = outcome.verdict
        report = GuardrailsReport(
            available=verdict.available,
            allow=verdict.available and verdict.allow,
            violations=verdict.violations,
            requires_approval=verdict.requires_approval,
            approvals=verdict.approvals,
            revision=verdict.revision,
            error=verdict.error,
        )
        ref = RulesetRef(ruleset.name, ruleset.version, ruleset.file)
        return Explanation(ref, outcome.fired_rules, outcome.proposal, report, outcome.summary, outcome.error)

    def _record(self, response: DecisionResponse, caller: str, latency_ms: dict[str, float]) -> dict[str, Any]:
        """The decision log's record: everything a reviewer needs, as plain JSON values."""
        result, explanation = response.result, response.result.explanation
        return {
            "kind": "decision",
            "decision_id": result.decision_id,
            "created_at": now(),
            "caller": caller,
            "run_id": result.run_id,
            "agent": response.agent,
            "ruleset": _BUILTINS(explanation.ruleset),
            "bundle_revision": explanation.guardrails.revision or self.catalog.version,
            "facts": result.context,
            "fired_rules": _BUILTINS(explanation.fired_rules),
            "proposal": _BUILTINS(explanation.proposal),
            "guardrails": _BUILTINS(explanation.guardrails),
            "decision": _BUILTINS(result.decision),
            "execution": _BUILTINS(result.execution),
            "summary": explanation.summary,
            "error": explanation.error,
            "latency_ms": latency_ms,
            **({} if explanation.not_fired is msgspec.UNSET else {"not_fired": _BUILTINS(explanation.not_fired)}),
        }


_BUILTINS = msgspec.to_builtins


class _Timer:
    """Per-stage latencies of one decision, in milliseconds."""

    def __init__(self, started: float | None) -> None:
        self.last = self.start = started if started is not None else time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round((now - self.last) * 1000, 3)
        self.last = now
        self.laps["total"] = round((now - self.start) * 1000, 3)

"""One decision, end to end: facts -> rules -> proposal -> guardrails -> decision -> log.

The composition of the pure pieces with the three outside things (engine,
OPA, decision log); ``app.py`` and the CLI call ``DecisionService.decide``.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from service import decision as dec
from service.catalog import Catalog
from service.decision import FiredRule, Outcome, Proposal, RuleOutputError, Verdict
from service.decision_log import LogRecord
from service.engine import LoadedRuleset, RuleEngine
from service.errors import EngineError
from service.ruleset import Ruleset


class GuardrailsPort(Protocol):
    revision: str

    async def check(self, item: dict[str, Any]) -> Verdict: ...


class DecisionLogPort(Protocol):
    async def append(self, record: LogRecord) -> int: ...


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


_ENCODER = msgspec.json.Encoder()


class DecisionService:
    """Decides with the current catalog; every decision is logged before it is returned."""

    def __init__(
        self,
        catalog: Catalog,
        engine: RuleEngine,
        guardrails: GuardrailsPort,
        log: DecisionLogPort,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.guardrails = guardrails
        self.log = log
        self.loaded: dict[str, LoadedRuleset] = {name: engine.load(rs) for name, rs in catalog.rulesets.items()}

    async def decide(self, ruleset_name: str, body: bytes, caller: str) -> DecisionResponse:
        """Decode ``body`` as the ruleset's facts and decide; 4xx errors raise before any work."""
        ruleset = self.catalog.get(ruleset_name)
        facts = ruleset.decoder.decode_json(body)
        return await self.decide_facts(ruleset, facts, caller)

    async def decide_facts(self, ruleset: Ruleset, facts: dict[str, Any], caller: str) -> DecisionResponse:
        outcome = await self._outcome(ruleset, facts)
        decision_id, run_id = uuid7(), uuid.uuid4().hex
        result = Result(
            decision=outcome.decision,
            context=facts,
            execution=outcome.execution,
            decision_log_id=0,
            run_id=run_id,
            decision_id=decision_id,
            explanation=self._explanation(ruleset, outcome),
        )
        response = DecisionResponse(ruleset.agent, result)
        seq = await self.log.append(self._record(ruleset, facts, response, caller))
        return msgspec.structs.replace(response, result=msgspec.structs.replace(result, decision_log_id=seq))

    async def _outcome(self, ruleset: Ruleset, facts: dict[str, Any]) -> Outcome:
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

    def _record(self, ruleset: Ruleset, facts: dict[str, Any], response: DecisionResponse, caller: str) -> LogRecord:
        result = response.result
        return LogRecord(
            decision_id=result.decision_id,
            created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            caller=caller,
            ruleset=ruleset.name,
            ruleset_version=ruleset.version,
            bundle_revision=self.guardrails.revision,
            decision_type=result.decision.decision_type,
            execution_status=result.execution.status,
            request=_ENCODER.encode(facts).decode(),
            response=_ENCODER.encode(response).decode(),
        )

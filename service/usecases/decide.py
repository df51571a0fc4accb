"""One decision, end to end: facts -> rules -> proposal -> guardrails -> decision -> log.

The composition of the pure pieces with the three outside things (engine,
OPA, decision log).  Callers decode first (``service.http.bodies``, the CLI): the service
takes a ruleset and its validated facts, never a request's bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from service.authoring.catalog import Catalog
from service.domain import decision as dec
from service.domain.context import left_out
from service.domain.decision import FiredRule, GuardrailsReport, Outcome, Proposal, RuleOutputError, RulesetRef, Verdict
from service.domain.explain import why_not
from service.domain.limits import JsonLimits
from service.domain.record import ApprovalTerms, DecisionRecord, StoredRecord, later, now
from service.domain.redaction import RedactionKey, redact_record
from service.domain.ruleset import Ruleset, approval_expiry_s
from service.errors import EngineError, RedactionKeyMissing
from service.ports.guardrails import GuardrailsPort
from service.ports.log import RecordStore
from service.ports.metrics import Answered, DecisionObserver
from service.ports.rules import RuleEngine
from service.ports.tracing import NO_TRACER, TraceParent, Tracer
from service.usecases.answer import DecisionResponse, Explanation, Result, uuid7
from service.usecases.context import ContextBuilder, Filled
from service.usecases.timing import Answers, Timer, traced


class _RulesPass(msgspec.Struct, frozen=True):
    fired: list[FiredRule]
    proposal: Proposal | None
    error: str | None


class DecisionService:
    """Decides with the current catalog; every decision is logged before it is returned."""

    def __init__(
        self,
        catalog: Catalog,
        engine: RuleEngine[Any],
        guardrails: GuardrailsPort,
        log: RecordStore,
        json_limits: JsonLimits | None = None,
        observer: DecisionObserver | None = None,
        tracer: Tracer = NO_TRACER,
        redaction: RedactionKey | None = None,
        context: ContextBuilder | None = None,
    ) -> None:
        self.catalog = catalog
        self.context = context or ContextBuilder(None, 0)  # without one, a group left out fails closed
        self.redaction = redaction  # the key the ``redact:`` fields of records are hashed under
        self.observer = observer
        self.tracer = tracer
        self.json_limits = json_limits or JsonLimits()  # what callers check a body against before decoding it
        self.engine = engine
        self.guardrails = guardrails
        self.log = log
        # the engine's handles of the loaded rulesets, opaque here
        self.loaded: dict[str, Any] = {name: engine.load(rs) for name, rs in catalog.rulesets.items()}

    async def decide_facts(
        self,
        ruleset: Ruleset,
        facts: dict[str, Any],
        caller: str,
        *,
        started: float | None = None,
        explain_full: bool = False,
        parent: TraceParent | None = None,
    ) -> DecisionResponse:
        """Decide on already validated facts, log the decision, and answer with its log id.  ``parent``:
        the caller's trace context, which the decision's span continues."""
        timer = Timer(started)
        with traced(self.tracer, ruleset, timer, parent) as answers:
            timer.lap("decode")
            filled = await self.context.build_context(ruleset, facts)
            timer.lap("context", keep=False)
            outcome = await self._judged(ruleset, filled.facts, timer, filled.error)
            response = self._response(ruleset, filled, outcome, explain_full=explain_full and not filled.error)
            _answered_to(answers, response)
            stored = await self.log.append(self._record(ruleset, response, caller, dict(timer.laps)))
            self._observe([response], timer)
        return _logged(response, stored)

    async def decide_batch(
        self,
        ruleset: Ruleset,
        valid: list[dict[str, Any]],
        caller: str,
        *,
        started: float | None = None,
        parent: TraceParent | None = None,
    ) -> list[DecisionResponse]:
        """Decide each of ``valid`` (already validated facts), in order: one rules pass per item, ONE
        guardrail query for all, the records committed together.  ``started``: when decoding began.
        Traced as one span for the whole batch."""
        timer = Timer(started)
        with traced(self.tracer, ruleset, timer, parent, batch=True) as answers:
            timer.lap("decode")
            filled = await self.context.build_many(ruleset, valid)
            timer.lap("context", keep=False)
            complete = [item.facts for item in filled]
            passes = await self._rules_passes(ruleset, complete, [item.error for item in filled])
            timer.lap("rules")
            outcomes = await self._judge_all(ruleset, complete, passes)
            timer.lap("guardrails")
            responses = [self._response(ruleset, item, out) for item, out in zip(filled, outcomes, strict=True)]
            for response in responses:
                _answered_to(answers, response)
            laps = dict(timer.laps)  # as the records carry them: without the log's own time
            stored = await self.log.append_many([self._record(ruleset, resp, caller, laps) for resp in responses])
            self._observe(responses, timer)
        return [_logged(response, record) for response, record in zip(responses, stored, strict=True)]

    async def rules_opinion(self, ruleset: Ruleset, facts: dict[str, Any], missing: str | None) -> Proposal | None:
        """What the ruleset's own rules propose for ``facts`` (None: no rule matched, it failed, or the
        facts are ``missing`` a group)."""
        (rules,) = await self._rules_passes(ruleset, [facts], [missing])
        return rules.proposal

    async def guard(self, ruleset: Ruleset, facts: dict[str, Any], proposal: Proposal) -> Verdict:
        """The guardrails' verdict on ``proposal``, asked as for the rules' own proposals."""
        return await self.guardrails.check(self._guardrail_input(ruleset, facts, proposal))

    async def log_outcome(
        self, ruleset: Ruleset, filled: Filled, outcome: Outcome, caller: str, timer: Timer, answers: Answers,
        amend: Callable[[DecisionRecord], DecisionRecord],
    ) -> DecisionResponse:  # fmt: skip
        """Answer ``outcome`` as ``decide_facts`` does, its record ``amend``-ed before it is logged."""
        response = self._response(ruleset, filled, outcome)
        _answered_to(answers, response)
        stored = await self.log.append(amend(self._record(ruleset, response, caller, dict(timer.laps))))
        self._observe([response], timer)
        return _logged(response, stored)

    def _observe(self, responses: list[DecisionResponse], timer: Timer) -> None:
        """The log append's time is the "log" lap (after the record took its laps), then the observer."""
        timer.lap("log")
        if self.observer is not None:
            self.observer.decided([_answered(response) for response in responses], timer.laps)

    async def _judge_all(
        self, ruleset: Ruleset, facts: list[dict[str, Any]], passes: list[_RulesPass]
    ) -> list[Outcome]:
        asked = [(f, p.proposal) for f, p in zip(facts, passes, strict=True) if p.proposal is not None]
        verdicts = iter(await self.guardrails.check_many([self._guardrail_input(ruleset, f, p) for f, p in asked]))
        return [
            self._final(ruleset, f, p, next(verdicts) if p.proposal else None)
            for f, p in zip(facts, passes, strict=True)
        ]

    def _response(
        self, ruleset: Ruleset, filled: Filled, outcome: Outcome, *, explain_full: bool = False
    ) -> DecisionResponse:
        explanation = self._explanation(ruleset, outcome)
        if filled.sources:
            explanation = msgspec.structs.replace(explanation, context=filled.sources)
        if explain_full:
            fired = {rule.id for rule in outcome.fired_rules}
            explanation = msgspec.structs.replace(explanation, not_fired=why_not(ruleset, filled.facts, fired))
        result = Result(
            decision=outcome.decision,
            context=filled.facts,
            execution=outcome.execution,
            decision_log_id=0,
            run_id=uuid.uuid4().hex,
            decision_id=uuid7(),
            explanation=explanation,
        )
        return DecisionResponse(ruleset.agent, result)

    async def evaluate(self, ruleset: Ruleset, facts: dict[str, Any], timer: Timer | None = None) -> Outcome:
        """Rules, proposal, guardrails and the final word, without logging (also used by replay)."""
        timer = timer or Timer(None)
        timer.lap("decode")
        # the context: the facts as the rules see them, complete (decoded with their defaults filled in,
        # nothing fetched from elsewhere): a stage of the trace, not one of the record's laps
        timer.lap("context", keep=False)
        return await self._judged(ruleset, facts, timer, left_out(ruleset.context, facts))

    async def _judged(
        self, ruleset: Ruleset, facts: dict[str, Any], timer: Timer, missing: str | None = None
    ) -> Outcome:
        """The rules, the guardrails and the final word; ``missing``: why the facts are incomplete
        (a context provider failed), and the decision escalates without asking the rules."""
        outcome = await self._outcome(ruleset, facts, timer, missing)
        timer.lap("guardrails")
        return outcome

    async def _outcome(self, ruleset: Ruleset, facts: dict[str, Any], timer: Timer, missing: str | None) -> Outcome:
        (rules,) = await self._rules_passes(ruleset, [facts], [missing])
        timer.lap("rules")
        verdict = None
        if rules.proposal is not None:
            verdict = await self.guardrails.check(self._guardrail_input(ruleset, facts, rules.proposal))
        return self._final(ruleset, facts, rules, verdict)

    async def _rules_passes(
        self, ruleset: Ruleset, items: list[dict[str, Any]], missing: list[str | None]
    ) -> list[_RulesPass]:
        """The rules over each item; an item whose facts are ``missing`` (the reason) is not matched."""
        asked = [facts for facts, why in zip(items, missing, strict=True) if why is None]
        matched = iter(await self.engine.match_many_async(self.loaded[ruleset.name], asked) if asked else [])
        return [
            self._proposed(ruleset, facts, next(matched)) if why is None else _RulesPass([], None, why)
            for facts, why in zip(items, missing, strict=True)
        ]

    @staticmethod
    def _proposed(ruleset: Ruleset, facts: dict[str, Any], fired_ids: list[str] | EngineError) -> _RulesPass:
        if isinstance(fired_ids, EngineError):
            return _RulesPass([], None, str(fired_ids))
        fired: list[FiredRule] = []
        try:
            all_fired, winners = dec.fired_rules(ruleset, fired_ids)
            won = {rule.id for rule in winners}
            fired = [FiredRule(r.id, r.title, r.file, r.line, r.priority, r.id in won) for r in all_fired]
            return _RulesPass(fired, dec.propose(ruleset, facts, winners), None)
        except (EngineError, RuleOutputError) as failure:
            return _RulesPass(fired, None, str(failure))

    def _final(self, ruleset: Ruleset, facts: dict[str, Any], rules: _RulesPass, verdict: Verdict | None) -> Outcome:
        if rules.proposal is None or verdict is None:  # nothing to approve: the guardrails are not asked
            verdict = Verdict(available=False, revision=self.guardrails.revision, error="not consulted")
            return dec.decide(ruleset, facts, rules.fired, None, verdict, error=rules.error)
        return dec.decide(ruleset, facts, rules.fired, rules.proposal, verdict)

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
        report = GuardrailsReport.of(outcome.verdict)
        ref = RulesetRef(ruleset.name, ruleset.version, ruleset.file)
        return Explanation(ref, outcome.fired_rules, outcome.proposal, report, outcome.summary, outcome.error)

    def _record(
        self, ruleset: Ruleset, response: DecisionResponse, caller: str, latency_ms: dict[str, float]
    ) -> DecisionRecord:
        """The decision log's record: everything a reviewer needs."""
        result, explanation = response.result, response.result.explanation
        created_at = now()
        record = DecisionRecord(
            decision_id=result.decision_id,
            created_at=created_at,
            caller=caller,
            run_id=result.run_id,
            agent=response.agent,
            ruleset=explanation.ruleset,
            bundle_revision=explanation.guardrails.revision or self.catalog.version,
            facts=result.context,
            fired_rules=explanation.fired_rules,
            proposal=explanation.proposal,
            guardrails=explanation.guardrails,
            decision=result.decision,
            execution=result.execution,
            summary=explanation.summary,
            error=explanation.error,
            latency_ms=latency_ms,
            not_fired=explanation.not_fired,
            context=explanation.context,
            approval=_approval(result.execution.status, ruleset, created_at),
        )
        return self._redacted(ruleset, record)

    def _redacted(self, ruleset: Ruleset, record: DecisionRecord) -> DecisionRecord:
        """The record as the log stores it: the ruleset's ``redact:`` fields as keyed hashes (the
        caller's answer, built before, keeps the values)."""
        if not ruleset.redact:
            return record
        if self.redaction is None:  # bootstrap refuses to serve such a ruleset without a key
            raise RedactionKeyMissing(f"ruleset {ruleset.name!r} redacts {', '.join(ruleset.redact)}: no key")
        return redact_record(record, ruleset.redact, self.redaction)


def _approval(status: str, ruleset: Ruleset, created_at: str) -> ApprovalTerms | msgspec.UnsetType:
    """When a decision that waits for a person expires: its ruleset's ``approval_expiry_s`` after
    it was decided (the log's store queues it for approval until then)."""
    if status != dec.PENDING_APPROVAL:
        return msgspec.UNSET
    expiry = approval_expiry_s(ruleset.params)
    return ApprovalTerms(expiry, later(created_at, expiry))


def _logged(response: DecisionResponse, stored: StoredRecord) -> DecisionResponse:
    return msgspec.structs.replace(response, result=msgspec.structs.replace(response.result, decision_log_id=stored.id))


def _answered_to(answers: Answers, response: DecisionResponse) -> None:
    result = response.result
    answers.add(result.decision_id, result.decision.decision_type, result.execution.status)


def _answered(response: DecisionResponse) -> Answered:
    result, explained = response.result, response.result.explanation
    status, violations = result.execution.status, explained.guardrails.violations
    return Answered(explained.ruleset.name, result.decision.decision_type, status, violations)

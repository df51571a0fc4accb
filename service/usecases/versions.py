"""One version of rules/ and rego/, running: its catalog, its compiled rules in the engine, its own
OPA child loaded with its bundle, and the decision service over them.

The served version (service/usecases/serving.py) and a candidate (service/usecases/candidate.py) are both
one; service/bootstrap.py builds the engine and the guardrails client they run on.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from service.authoring.catalog import Catalog
from service.domain.decision import Outcome
from service.domain.limits import JsonLimits
from service.domain.redaction import RedactionKey
from service.ports.guardrails import VersionGuardrails
from service.ports.log import RecordStore
from service.ports.metrics import DecisionObserver
from service.ports.rules import RuleEngine
from service.ports.tracing import NO_TRACER, Tracer
from service.usecases.context import ContextBuilder
from service.usecases.decide import DecisionService

DRAIN_TIMEOUT_S = 30.0


class RunningVersion:
    def __init__(self, catalog: Catalog, guardrails: VersionGuardrails, service: DecisionService) -> None:
        self.catalog = catalog
        self.guardrails = guardrails
        self.service = service
        self.in_flight = 0  # requests that started on this version and are not done

    @property
    def version(self) -> str:
        return self.catalog.version

    @classmethod
    async def start(
        cls,
        catalog: Catalog,
        engine: RuleEngine[Any],
        guardrails: VersionGuardrails,
        log: RecordStore,
        limits: JsonLimits | None = None,
        observer: DecisionObserver | None = None,
        tracer: Tracer = NO_TRACER,
        redaction: RedactionKey | None = None,
        context: ContextBuilder | None = None,
    ) -> Self:
        """Compile ``catalog``'s rules in ``engine`` and start ``guardrails`` with its policies; no checks.
        ``guardrails`` are closed again when anything fails."""
        try:
            # compiling runs off the event loop: requests go on meanwhile
            service = await asyncio.to_thread(
                DecisionService,
                catalog,
                engine,
                guardrails,
                log,
                limits,
                observer=observer,
                tracer=tracer,
                redaction=redaction,
                context=context,
            )
            await guardrails.start(catalog.policies, catalog.version)
        except BaseException:
            await guardrails.close()
            raise
        return cls(catalog, guardrails, service)

    async def redecide(self, ruleset_name: str, facts: dict[str, Any]) -> Outcome:
        """Decide logged ``facts`` again under this version, nothing logged; UnknownRuleset when the
        version has no such ruleset, InvalidFacts when the facts do not fit its schema."""
        ruleset = self.catalog.get(ruleset_name)
        return await self.service.evaluate(ruleset, ruleset.decoder.convert(facts))

    async def retire(self) -> None:
        """Stop this version's OPA once the requests that started on it are done."""
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        while self.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await self.close()

    async def close(self) -> None:
        await self.guardrails.close()

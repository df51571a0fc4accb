"""The guardrails ports: what a decision needs of the OPA client, and what a running version
(served or candidate) needs to start, watch and stop its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from service.authoring.policies import PolicyBundle
from service.domain.decision import Verdict


class GuardrailsPort(Protocol):
    """Verdicts on proposals; an OPA failure is an unavailable verdict, never an exception."""

    @property
    def revision(self) -> str: ...

    async def check(self, item: dict[str, Any]) -> Verdict: ...

    async def check_many(self, items: list[dict[str, Any]]) -> list[Verdict]: ...


class Breaker(Protocol):
    @property
    def state(self) -> str: ...


class VersionGuardrails(GuardrailsPort, Protocol):
    """One version's own guardrails client: started with that version's policies, closed with it."""

    @property
    def breaker(self) -> Breaker: ...

    async def start(self, bundle: PolicyBundle, revision: str) -> None: ...

    def status(self) -> dict[str, Any]:
        """GET /ready's ``opa`` section (also read by the metrics at each scrape)."""
        ...

    async def close(self) -> None: ...


class PolicyCheck(Protocol):
    """``opa check --strict`` as a gate: RulesetInvalid with every file:line:column problem, unless clean."""

    def __call__(self, rego_dir: Path, display_root: str, whose: str = "the") -> None: ...

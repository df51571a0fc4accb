"""A candidate version: rules/ and rego/ that are not served, decided beside the log or the live version.

It has its own catalog, its own compiled rules and its own OPA child; it never
writes to the decision log and never registers its version there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.authoring.catalog import Catalog, load_catalog
from service.domain.decision import Outcome
from service.errors import CandidateDoesNotLog, InvalidCandidate, InvalidFacts, UnknownRuleset
from service.ports.guardrails import PolicyCheck, VersionGuardrails
from service.ports.log import RecordStore
from service.ports.rules import RuleEngine
from service.usecases.versions import RunningVersion

# off the response path a slow verdict costs nothing, and a missed one would show as a false flip
CANDIDATE_OPA_TIMEOUT_S = 2.0


class NotComparable(Exception):
    """A decision the candidate cannot re-decide; ``reason`` says why.

    Outside the error tree on purpose: not a failure of opsgate, but the signal replay and
    shadow count as a skipped decision."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def candidate_dirs(root: Path) -> tuple[Path, Path]:
    """``root/rules`` and ``root/rego``; a clear error when either is missing."""
    rules, rego = root / "rules", root / "rego"
    for path in (rules, rego):
        if not path.is_dir():
            raise InvalidCandidate(f"candidate {root} has no {path.name}/ directory (it must hold rules/ and rego/)")
    return rules, rego


class _NoLog:
    """A candidate decides with ``evaluate`` only (replay, shadow, ``opsgate test``): anything that
    tries to log through it is a bug."""

    writer = "candidate"

    def __getattr__(self, name: str) -> Any:
        raise CandidateDoesNotLog(f"a candidate version does not write to the decision log ({name})")


class Candidate(RunningVersion):
    """A running version that is not served: it never logs, and what it cannot re-decide is NotComparable."""

    async def redecide(self, ruleset_name: str, facts: dict[str, Any]) -> Outcome:
        """Decide ``facts`` as the candidate would (nothing logged); NotComparable when it cannot."""
        try:
            outcome = await super().redecide(ruleset_name, facts)
        except UnknownRuleset:
            raise NotComparable(f"ruleset {ruleset_name!r} is not in the candidate") from None
        except InvalidFacts as error:
            raise NotComparable(f"facts do not fit the candidate's schema: {error.message}") from None
        if outcome.proposal is not None and not outcome.verdict.available:
            raise NotComparable(f"the candidate's guardrails gave no verdict: {outcome.verdict.error}")
        return outcome


class Candidates:
    """Opens candidates: each checked like ``opsgate check``, compiled in the engine ``engine()`` gives,
    with its own guardrails client from ``guardrails(timeout)`` (service/bootstrap.py builds them all).

    The engine is asked for only when a candidate is compiled: ``check`` alone (``serve --shadow`` checks
    its candidate before ``--workers`` forks) must not create the process's engine, whose thread a
    forked worker would not have."""

    def __init__(
        self,
        engine: Callable[[], RuleEngine[Any]],
        guardrails: Callable[[float], VersionGuardrails],
        check_policies: PolicyCheck,
        timeout: float = CANDIDATE_OPA_TIMEOUT_S,
    ) -> None:
        self.engine = engine
        self.guardrails = guardrails
        self.check_policies = check_policies
        self.timeout = timeout

    def check(self, rules_dir: Path, rego_dir: Path) -> Catalog:
        """Load and check a candidate like ``opsgate check``; RulesetInvalid (file:line:column) when broken."""
        catalog = load_catalog(rules_dir, rego_dir)
        self.check_policies(rego_dir, rego_dir.name, "the candidate's")
        return catalog

    async def open(self, rules_dir: Path, rego_dir: Path) -> Candidate:
        """Check, compile and start the candidate (its own OPA child, loaded with its bundle)."""
        catalog = await asyncio.to_thread(self.check, rules_dir, rego_dir)
        return await self.from_catalog(catalog)

    async def from_catalog(self, catalog: Catalog) -> Candidate:
        """Compile ``catalog``'s rules and start its own OPA child with its policies; no checks."""
        no_log: RecordStore = _NoLog()
        return await Candidate.start(catalog, self.engine(), self.guardrails(self.timeout), no_log)

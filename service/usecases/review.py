"""What compliance reviewers ask of the decision log: query, show, explain, replay,
outcomes, chain heads, and the ruleset versions with their diffs.

Shared by the JSON API and the HTML pages; both only decode, call and encode.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec

from service.authoring.rulesets import parse_ruleset
from service.domain import explain
from service.domain.decision import APPROVED, Decision, Execution, FiredRule, Violation
from service.domain.record import (
    DecisionQuery,
    DecisionRecord,
    OutcomeRecord,
    OutcomeReport,
    OutcomeStatus,
    Record,
    StoredRecord,
    VersionInfo,
    now,
)
from service.domain.redaction import not_replayable, replay_facts
from service.domain.ruleset import Ruleset
from service.errors import (
    BadRequest,
    Conflict,
    DecisionLogError,
    InvalidFacts,
    NotFound,
    OutcomeForbidden,
    OutcomeNotAllowed,
    RulesetInvalid,
    UnknownRuleset,
)
from service.ports.log import RecordStore, VersionStore
from service.usecases.status import Step, actions_state, approval_state, by_decision, current_status, history
from service.usecases.versions import RunningVersion

_CACHE_SIZE = 32


def decision_of(stored: StoredRecord) -> DecisionRecord:
    """A stored decision's record (the store indexes it by kind, so any other kind is a broken log)."""
    record = stored.record()
    if not isinstance(record, DecisionRecord):
        raise DecisionLogError(f"{stored.describe()} is a {record.kind} record, not a decision")
    return record


def _summary(stored: StoredRecord, status: str) -> dict[str, Any]:
    record = decision_of(stored)
    won = [r.id for r in record.fired_rules if r.won]
    return {
        "decision_id": stored.decision_id,
        "created_at": stored.created_at,
        "caller": stored.caller,
        "ruleset": stored.ruleset,
        "ruleset_version": stored.ruleset_version,
        "decision_type": stored.decision_type,
        "confidence": record.decision.confidence,
        "status": status,  # now: after approval, rejection, expiry and outcomes
        "execution_status": stored.execution_status,  # when it was answered
        "org_id": stored.org_id,
        "won": won,
        "denied_by": [v.id for v in record.guardrails.violations],
        "log_id": stored.id,
        "hash": stored.hash,
    }


def present(stored: StoredRecord) -> dict[str, Any]:
    """A stored record with where it sits in its chain, as the JSON API shows it: the record
    exactly as it was hashed (its canonical body)."""
    return {
        "log_id": stored.id,
        "writer": stored.writer,
        "seq": stored.seq,
        "prev_hash": stored.prev_hash,
        "hash": stored.hash,
        "record": msgspec.Raw(stored.body.encode()),
    }


class Shown(msgspec.Struct, frozen=True):
    """A stored record (where it sits in its chain) with its record read back as its type."""

    stored: StoredRecord
    record: Record

    @classmethod
    def of(cls, stored: StoredRecord) -> Shown:
        return cls(stored, stored.record())


class Reviewed(Shown, frozen=True):
    """A decision with every outcome reported for it, its approval or expiry, if any, and its history:
    every step in the log's order, the last one its current status (the reviewer pages)."""

    record: DecisionRecord
    outcomes: list[Shown]
    approvals: list[Shown]
    history: list[Step]

    @property
    def status(self) -> str:
        return self.history[-1].status

    @property
    def actions_state(self) -> str:
        """Where its actions stand, outcomes left aside: EXECUTED, REJECTED, EXPIRED, PENDING_APPROVAL or
        the status it was answered with."""
        return actions_state(self.history)


def _comparable(
    decision: Decision, execution: Execution, fired: list[FiredRule], violations: list[Violation]
) -> dict[str, Any]:
    """The parts of a decision a replay compares (a record's and an outcome's are of one type)."""
    return {
        "decision.decision_type": decision.decision_type,
        "decision.confidence": decision.confidence,
        "decision.priority": decision.priority,
        "decision.proposed_actions": decision.proposed_actions,
        "fired_rules": [f"{r.id}{' (won)' if r.won else ''}" for r in fired],
        "violations": sorted(v.id for v in violations),
        "execution.status": execution.status,
    }


class ReviewService:
    def __init__(
        self,
        log: RecordStore,
        registry: VersionStore,
        use: Callable[[], AbstractAsyncContextManager[RunningVersion]],
    ) -> None:
        self.log = log
        self.registry = registry
        self.use = use  # holds the version serving now for the length of a call
        self._files: dict[str, dict[str, bytes]] = {}
        self._rulesets: dict[tuple[str, str], Ruleset | None] = {}

    # --- decisions ----------------------------------------------------------------

    async def query(self, query: DecisionQuery) -> dict[str, Any]:
        """A page of decision summaries matching ``query``, newest first, and the cursor of the next."""
        rows, cursor = await self.log.query(query)
        about = by_decision(await self.log.get_many([row.decision_id for row in rows]))
        items = [_summary(row, current_status(about.get(row.decision_id, [row]))) for row in rows]
        return {"items": items, "next_cursor": cursor}

    async def entries(self, decision_id: str) -> tuple[StoredRecord, list[StoredRecord]]:
        """A logged decision and the records about it (outcomes, approval, expiry); 404 if none."""
        entries = await self.log.get(decision_id)
        decisions = [e for e in entries if e.kind == "decision"]
        if not decisions:
            raise NotFound(f"no decision {decision_id!r} in the log")
        return decisions[0], [e for e in entries if e.kind != "decision"]

    async def decision(self, decision_id: str) -> dict[str, Any]:
        """The full record, with every outcome reported for it and its approval or expiry, if any."""
        stored, later = await self.entries(decision_id)
        return {
            **present(stored),
            "status": current_status([stored, *later]),
            "outcomes": [present(o) for o in later if o.kind == "outcome"],
            "approvals": [present(o) for o in later if o.kind in ("approval", "expiry")],
        }

    async def reviewed(self, decision_id: str) -> Reviewed:
        """What ``decision`` shows, as types (the reviewer pages read it)."""
        stored, later = await self.entries(decision_id)
        return Reviewed(
            stored,
            decision_of(stored),
            outcomes=[Shown.of(o) for o in later if o.kind == "outcome"],
            approvals=[Shown.of(o) for o in later if o.kind in ("approval", "expiry")],
            history=history([stored, *later]),
        )

    async def explain(self, decision_id: str) -> dict[str, Any]:
        stored, _ = await self.entries(decision_id)
        record = decision_of(stored)
        lines = explain.sentences(record, await self.ruleset_at(record))
        return {"decision_id": decision_id, "sentences": lines, "text": " ".join(lines)}

    async def replay(self, decision_id: str) -> dict[str, Any]:
        """Re-decide the stored facts with the current version (nothing is logged)."""
        stored, _ = await self.entries(decision_id)
        before = decision_of(stored)
        name = before.ruleset.name
        async with self.use() as served:
            facts, hidden = replay_facts(before.facts, served.catalog.rulesets.get(name))
            if hidden:
                raise Conflict(f"decision {decision_id!r} cannot be replayed: {not_replayable(hidden)}")
            try:
                outcome = await served.redecide(name, facts)
            except UnknownRuleset:
                raise Conflict(f"ruleset {name!r} is no longer served; the decision cannot be replayed") from None
            except InvalidFacts as error:
                message = f"the stored facts do not fit the current ruleset's schema: {error.message}"
                raise Conflict(message, error.problems) from None
            catalog = served.catalog
        old = _comparable(before.decision, before.execution, before.fired_rules, before.guardrails.violations)
        new = _comparable(outcome.decision, outcome.execution, outcome.fired_rules, outcome.verdict.violations)
        differences = [{"field": k, "before": old[k], "after": new[k]} for k in old if old[k] != new[k]]
        return {
            "decision_id": decision_id,
            "before": {"version": before.bundle_revision, "ruleset_version": before.ruleset.version, **old},
            "after": {"version": catalog.version, "ruleset_version": catalog.rulesets[name].version, **new},
            "changed": bool(differences),
            "differences": differences,
        }

    async def record_outcome(
        self, decision_id: str, status: OutcomeStatus, detail: str, caller: str, *, for_anyone: bool = False
    ) -> dict[str, Any]:
        """Append an outcome (SUCCEEDED, FAILED or CANCELLED) for a logged decision whose actions were
        approved: by the caller that asked for it, or by anyone when ``for_anyone`` (an approve or admin key).
        403 outcome_forbidden for another caller, then 409 outcome_not_allowed for a decision in another state."""
        decided, later = await self.entries(decision_id)
        if not for_anyone and caller != decided.caller:
            raise OutcomeForbidden(
                f"{caller!r} did not ask for decision {decision_id!r}: only its caller "
                f"({decided.caller!r}) or an approve or admin key reports its outcome"
            )
        state = approval_state([decided, *later])
        if state not in (APPROVED, "EXECUTED"):
            raise OutcomeNotAllowed(
                f"decision {decision_id!r} is {state}: an outcome is reported only for a decision whose actions "
                "were approved (APPROVED, or EXECUTED after approval)"
            )
        payload = OutcomeRecord(
            decision_id=decision_id,
            created_at=now(),
            caller=caller,
            outcome=OutcomeReport(status, detail),
        )
        return present(await self.log.append(payload))

    async def heads(self) -> dict[str, Any]:
        return {"chains": [msgspec.to_builtins(head) for head in await self.log.heads()]}

    # --- versions -----------------------------------------------------------------

    async def versions(self) -> dict[str, Any]:
        current = await self._current_version()
        items = [{**msgspec.to_builtins(v), "current": v.version == current} for v in await self.registry.versions()]
        return {"current": current, "versions": items}

    async def _current_version(self) -> str:
        async with self.use() as served:
            return served.version

    async def resolve(self, prefix: str) -> str:
        """A full version id from an unambiguous prefix of at least 6 characters."""
        return (await self._find(prefix)).version

    async def _find(self, prefix: str) -> VersionInfo:
        if len(prefix) < 6:
            raise BadRequest(f"version {prefix!r} is too short: give at least 6 characters")
        matches = [v for v in await self.registry.versions() if v.version.startswith(prefix)]
        if not matches:
            raise NotFound(f"no ruleset version {prefix!r}")
        if len(matches) > 1:
            raise BadRequest(f"version {prefix!r} is ambiguous: {', '.join(m.version[:12] for m in matches)}")
        return matches[0]

    async def files(self, version: str) -> dict[str, bytes]:
        """Every file of a stored version, by path (cached: versions never change)."""
        if version not in self._files:
            files = {f.path: f.content for f in await self.registry.version_files(version)}
            if len(self._files) >= _CACHE_SIZE:
                self._files.pop(next(iter(self._files)))
            self._files[version] = files
        return self._files[version]

    async def version(self, prefix: str) -> dict[str, Any]:
        info = await self._find(prefix)
        files = [
            {"path": f.path, "sha256": f.sha256, "content": f.content.decode("utf-8", "replace")}
            for f in await self.registry.version_files(info.version)
        ]
        current = info.version == await self._current_version()
        return {**msgspec.to_builtins(info), "current": current, "files": files}

    async def diff(self, a: str, b: str) -> str:
        """A unified diff of every file between two versions (``a`` before ``b``)."""
        version_a, version_b = await self.resolve(a), await self.resolve(b)
        files_a, files_b = await self.files(version_a), await self.files(version_b)
        out = [f"# opsgate diff {version_a} {version_b}\n"]
        for path in sorted(set(files_a) | set(files_b)):
            before = files_a[path].decode("utf-8", "replace").splitlines(keepends=True) if path in files_a else []
            after = files_b[path].decode("utf-8", "replace").splitlines(keepends=True) if path in files_b else []
            source = f"a/{path}" if path in files_a else "/dev/null"
            target = f"b/{path}" if path in files_b else "/dev/null"
            out.extend(_terminated(difflib.unified_diff(before, after, source, target)))
        return "".join(out)

    async def ruleset_at(self, record: DecisionRecord) -> Ruleset | None:
        """The ruleset exactly as it was when ``record`` was decided; None if it cannot be loaded."""
        name, version = record.ruleset.name, record.bundle_revision
        key = (version, name)
        if key not in self._rulesets:
            files = await self.files(version)
            stored_as = f"rules/{name}.yaml"
            policies = [(path, content) for path, content in files.items() if path.startswith("rego/")]
            try:
                ruleset = parse_ruleset(files[stored_as], record.ruleset.file, policies, hashed_as=stored_as)
            except (KeyError, RulesetInvalid):
                ruleset = None
            self._rulesets[key] = ruleset
        return self._rulesets[key]

    async def snippets(self, record: DecisionRecord) -> dict[str, Any]:
        """The YAML of each fired rule and the Rego of each guardrail verdict, at the record's version."""
        files = await self.files(record.bundle_revision)
        ruleset = await self.ruleset_at(record)
        stored_as = f"rules/{record.ruleset.name}.yaml"
        text = files.get(stored_as, b"").decode("utf-8", "replace")
        rules = {}
        for fired in record.fired_rules:
            start, snippet = explain.yaml_block(text, fired.line)
            rules[fired.id] = {"file": fired.file, "line": start, "text": snippet}
        policies = {}
        guardrails = record.guardrails
        for violation in [*guardrails.violations, *guardrails.approvals]:
            located = explain.split_location(violation.location or "")
            if located:
                path, line = located
                start, snippet = explain.rego_block(files.get(path, b"").decode("utf-8", "replace"), line)
                policies[violation.id] = {"file": path, "line": start, "text": snippet}
        values = explain.sentences(record, ruleset)
        return {"rules": rules, "policies": policies, "sentences": values}


def _terminated(lines: Any) -> list[str]:
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines]

"""``opsgate replay``: re-decide logged decisions under a candidate version and count the flips.

The log is read newest first, one page at a time through the store's cursor, so
memory stays flat however long the log is; nothing is written to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import msgspec

from service.domain.record import DecisionQuery, StoredRecord
from service.domain.redaction import not_replayable, replay_facts
from service.ports.log import RecordStore
from service.usecases.candidate import Candidate, Candidates, NotComparable
from service.usecases.flips import NO_LOGGED_VERDICT, Flip, FlipMatrix, FlipSummary, Side, Skipped
from service.usecases.review import decision_of

PAGE = 500  # the store's largest page
DEFAULT_SAMPLES = 5


class LoggedDecisions(Protocol):
    """What replay reads of the decision log: its decisions a page at a time, and its name."""

    @property
    def description(self) -> str: ...

    @property
    def records(self) -> RecordStore: ...


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True):
    rules_dir: Path
    rego_dir: Path
    since: str | None = None
    until: str | None = None
    ruleset: str | None = None
    limit: int | None = None
    samples: int = DEFAULT_SAMPLES


class ReplayReport(msgspec.Struct, frozen=True):
    candidate_version: str
    log: str
    replayed: int  # re-decided and compared (the not replayable ones are not counted here)
    changed: int  # the final decision type differs
    not_replayable: int
    matrix: dict[str, dict[str, int]]
    flips: list[Flip]
    not_replayable_reasons: list[Skipped]
    # each replayed ruleset's decision types (logged or the candidate's), sorted: its block of the matrix
    rulesets: dict[str, list[str]] = {}

    @classmethod
    def of(
        cls, version: str, log: str, summary: FlipSummary, rulesets: dict[str, set[str]] | None = None
    ) -> ReplayReport:
        skipped = sum(s.count for s in summary.not_comparable)
        types = {name: sorted(found) for name, found in sorted((rulesets or {}).items())}
        return cls(version, log, summary.compared, summary.changed, skipped, summary.matrix,
                   list(summary.flips), list(summary.not_comparable), types)  # fmt: skip


async def replay(request: ReplayRequest, log: LoggedDecisions, candidates: Candidates) -> ReplayReport:
    """Re-decide every matching logged decision under the candidate; nothing is logged."""
    candidate = await candidates.open(request.rules_dir, request.rego_dir)
    try:
        matrix = FlipMatrix(request.samples)
        rulesets: dict[str, set[str]] = {}
        async for stored in _decisions(log.records, request):
            await _compare(candidate, stored, matrix, rulesets)
        return ReplayReport.of(candidate.version, log.description, matrix.summary(), rulesets)
    finally:
        await candidate.close()


async def _decisions(log: RecordStore, request: ReplayRequest) -> AsyncIterator[StoredRecord]:
    """Matching decisions newest first, a page at a time (at most ``limit`` in all)."""
    left = request.limit
    query = DecisionQuery(since=request.since, until=request.until, ruleset=request.ruleset, limit=PAGE)
    while left is None or left > 0:
        page = query if left is None else msgspec.structs.replace(query, limit=min(PAGE, left))
        rows, cursor = await log.query(page)
        for row in rows:
            yield row
        if left is not None:
            left -= len(rows)
        if cursor is None:
            return
        query = msgspec.structs.replace(query, cursor=cursor)


async def _compare(
    candidate: Candidate, stored: StoredRecord, matrix: FlipMatrix, rulesets: dict[str, set[str]]
) -> None:
    record = decision_of(stored)
    logged = record.answer()
    if logged.no_verdict:
        matrix.skip(stored.decision_id, NO_LOGGED_VERDICT)
        return
    facts, hidden = replay_facts(record.facts, candidate.catalog.rulesets.get(record.ruleset.name))
    if hidden:
        matrix.skip(stored.decision_id, not_replayable(hidden))
        return
    try:
        outcome = await candidate.redecide(record.ruleset.name, facts)
    except NotComparable as skipped:
        matrix.skip(stored.decision_id, skipped.reason)
        return
    old, new = Side.of(logged), Side.of(outcome.answer())
    matrix.add(stored.decision_id, old, new)
    rulesets.setdefault(record.ruleset.name, set()).update((old.decision_type, new.decision_type))

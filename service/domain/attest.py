"""The log held against its signed checkpoints (``opsgate log verify --checkpoints``).  Pure.

For each writer, the leaves of its chain are folded in seq order and the root at every signed
tree size is compared with the signed root: a covered record that is missing (truncation),
altered or replaced, even with every chain hash recomputed, makes the log no extension of that
checkpoint.  Records after a writer's ``final`` checkpoint, or written before a checkpoint that
does not cover them, were appended by someone else; a chain with no checkpoint at all was never
signed (every writer signs one as it starts).  The versions table is held against the newest
checkpoint listing each version, and the approval queue against the chain it derives from.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from service.domain import merkle
from service.domain.approval import approval_expires_at
from service.domain.checkpoint import Checkpoint, VersionRow, leaf, version_digest
from service.domain.decision import PENDING_APPROVAL
from service.domain.record import PENDING, ApprovalRecord, DecisionRecord, ExpiryRecord, StoredRecord, chain_hash


class Named(msgspec.Struct, frozen=True):
    name: str  # the checkpoint's file name
    checkpoint: Checkpoint


class PendingRow(msgspec.Struct, frozen=True):
    decision_id: str
    entry_id: int
    ruleset: str
    requested_by: str
    created_at: str
    expires_at: str
    status: str
    resolved_at: str | None = None
    resolved_by: str | None = None


class AttestReport(msgspec.Struct, frozen=True):
    checkpoints: int
    covered: int  # records covered by a checkpoint
    problems: list[str]
    notes: list[str]

    def __str__(self) -> str:
        lines = [f"checkpoints: {self.checkpoints} verified against the log, {self.covered} records covered"]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"FAILED: {problem}" for problem in self.problems]
        return "\n".join(lines)


class _Writer:
    """One writer's chain folded leaf by leaf against its checkpoints."""

    def __init__(self, writer: str, checkpoints: list[Named]) -> None:
        self.writer = writer
        self.checkpoints = sorted(checkpoints, key=lambda n: (n.checkpoint.tree_size, n.checkpoint.time))
        self.tree = merkle.Compact()
        self.rows: list[tuple[int, str]] = []  # (seq, created_at) past the largest signed size
        self.matched = 0  # the largest signed size whose root matched
        self.problems: list[str] = []
        self._next = 0
        self._reached()  # the checkpoints of an empty chain

    def add(self, row: StoredRecord) -> None:
        self.tree.append(leaf(chain_hash(row.prev_hash, row.body)))  # recomputed: the column is not trusted
        self._reached()
        if self._next == len(self.checkpoints):
            self.rows.append((row.seq, row.created_at))

    def _reached(self) -> None:
        pending = self.checkpoints
        while self._next < len(pending) and pending[self._next].checkpoint.tree_size == self.tree.size:
            self._compare(pending[self._next])
            self._next += 1

    def _compare(self, named: Named) -> None:
        if self.tree.root().hex() == named.checkpoint.root_hash:
            self.matched = named.checkpoint.tree_size
            return
        self.problems.append(
            f"writer {self.writer}: records 1..{self.tree.size} do not hash to the root signed by checkpoint "
            f"{named.name}: a record among seq {self.matched + 1}..{self.tree.size} was altered, replaced or "
            "removed (the log is not an extension of that checkpoint)"
        )

    def finish(self) -> tuple[int, list[str], list[str]]:
        """(records covered, problems, notes) once every row of the chain was added."""
        size = self.tree.size
        for named in self.checkpoints[self._next :]:
            self.problems.append(
                f"writer {self.writer}: checkpoint {named.name} covers {named.checkpoint.tree_size} records, the log "
                f"holds {size}: records {size + 1}..{named.checkpoint.tree_size} are missing (truncated)"
            )
        if not self.checkpoints:
            return 0, [*self.problems, f"writer {self.writer}: {size} records and no checkpoint: never signed"], []
        return self._uncovered()

    def _uncovered(self) -> tuple[int, list[str], list[str]]:
        signed = max(n.checkpoint.tree_size for n in self.checkpoints)
        latest = max(self.checkpoints, key=lambda n: n.checkpoint.time)
        rows = [(seq, at) for seq, at in self.rows if seq > signed]
        if not rows:
            return min(signed, self.tree.size), self.problems, []
        first = rows[0][0]
        if latest.checkpoint.final:
            self.problems.append(
                f"writer {self.writer}: records {first}..{rows[-1][0]} come after its final checkpoint "
                f"{latest.name} (signed as it stopped): appended by someone else"
            )
        elif early := [seq for seq, at in rows if at <= latest.checkpoint.time]:
            self.problems.append(
                f"writer {self.writer}: record seq {early[0]} is dated before checkpoint {latest.name} but not "
                "covered by it: appended afterwards"
            )
        note = f"writer {self.writer}: records {first}..{rows[-1][0]} are newer than its last checkpoint"
        note += " (not yet covered)"
        return signed, self.problems, [note]


def attest(rows: Iterable[StoredRecord], checkpoints: list[Named]) -> AttestReport:
    """Hold the chains (``rows`` ordered by writer, seq) against ``checkpoints`` (signatures already checked)."""
    by_writer: dict[str, list[Named]] = {}
    for named in checkpoints:
        by_writer.setdefault(named.checkpoint.writer, []).append(named)
    walkers: dict[str, _Writer] = {}
    for row in rows:
        if row.writer not in walkers:
            walkers[row.writer] = _Writer(row.writer, by_writer.get(row.writer, []))
        walkers[row.writer].add(row)
    for writer, signed in by_writer.items():
        walkers.setdefault(writer, _Writer(writer, signed))
    covered, problems, notes = 0, list[str](), list[str]()
    for writer in sorted(walkers):
        count, found, noted = walkers[writer].finish()
        covered, problems, notes = covered + count, problems + found, notes + noted
    return AttestReport(len(checkpoints), covered, problems, notes)


def version_problems(rows: list[VersionRow], checkpoints: list[Named]) -> list[str]:
    """Each version a checkpoint lists must still be registered as the newest such checkpoint signed it."""
    newest: dict[str, Named] = {}
    for named in sorted(checkpoints, key=lambda n: n.checkpoint.time):
        for version in named.checkpoint.versions:
            newest[version] = named
    table = {row.version: row for row in rows}
    problems = []
    for version, named in sorted(newest.items()):
        row = table.get(version)
        if row is None:
            problems.append(f"version {version[:12]}…: listed by checkpoint {named.name}, gone from the versions table")
        elif version_digest(row) != named.checkpoint.versions[version]:
            problems.append(
                f"version {version[:12]}…: its row (first_loaded_at, rulesets, git, files) differs from checkpoint "
                f"{named.name}: the versions table was edited"
            )
    return problems


def expected_approvals(rows: Iterable[StoredRecord]) -> dict[str, PendingRow]:
    """The approval queue the chain implies: a row per decision pending approval, resolved by its
    approval or expiry record."""
    expected: dict[str, PendingRow] = {}
    for row in rows:
        record = row.record()
        if isinstance(record, DecisionRecord) and record.execution.status == PENDING_APPROVAL:
            expected[record.decision_id] = PendingRow(
                record.decision_id, row.id, record.ruleset.name, record.caller, record.created_at,
                approval_expires_at(record), PENDING,
            )  # fmt: skip
        elif isinstance(record, ApprovalRecord | ExpiryRecord) and record.decision_id in expected:
            pending = expected[record.decision_id]
            expected[record.decision_id] = msgspec.structs.replace(
                pending, status=record.approval.status, resolved_at=record.created_at, resolved_by=record.caller
            )
    return expected


def approval_problems(table: list[PendingRow], expected: dict[str, PendingRow]) -> list[str]:
    """Every row of the approval queue must be what the (checkpointed) chain says, and none missing."""
    problems = []
    seen = set()
    for row in table:
        seen.add(row.decision_id)
        wanted = expected.get(row.decision_id)
        if wanted is None:
            problems.append(f"pending_approvals: decision {row.decision_id} has no pending decision in the chain")
        elif row != wanted:
            fields = [f for f in PendingRow.__struct_fields__ if getattr(row, f) != getattr(wanted, f)]
            problems.append(
                f"pending_approvals: decision {row.decision_id}: {', '.join(fields)} differ from the chain "
                f"({', '.join(f'{f}={getattr(row, f)!r}, chain says {getattr(wanted, f)!r}' for f in fields)})"
            )
    problems += [f"pending_approvals: decision {d} waits for approval in the chain, its row is missing"
                 for d in sorted(set(expected) - seen)]  # fmt: skip
    return problems

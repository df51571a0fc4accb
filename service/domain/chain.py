"""Verification of the decision log: walk each writer's hash chain and check every record.

``record`` defines the records and their canonical form; this module checks a stored log
against them: each link and hash, each body decoded as a record, and the indexed columns
derived again from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import msgspec
from msgspec import UNSET

from service.domain.record import GENESIS, UNREADABLE, StoredRecord, VersionFile, chain_hash, columns
from service.domain.ruleset import content_hash


class VerifyReport(msgspec.Struct, frozen=True):
    records: int
    chains: int
    ok: bool
    error: str | None = None
    versions: int = 0
    version_error: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"chain broken after {self.records} good records: {self.error}"
        chains = f" ({self.chains} chains)" if self.chains > 1 else ""
        text = f"{self.records} records verified, chain intact{chains}"
        if self.version_error:
            return f"{text}\nruleset versions: {self.version_error}"
        return f"{text}\n{self.versions} ruleset version(s) verified"

    @property
    def intact(self) -> bool:
        return self.ok and self.version_error is None


_INDEXED = ("kind", "decision_id", "created_at", "caller", "ruleset", "ruleset_version", "bundle_revision",
            "decision_type", "execution_status", "org_id")  # fmt: skip


Index = tuple[tuple[tuple[str, bool], ...], tuple[tuple[str, str], ...]]  # sorted (fired, denied) rows


def _check(row: StoredRecord, seq: int, prev_hash: str, indexes: Mapping[int, Index] | None) -> str | None:
    if row.seq != seq:
        return f"seq {row.seq} where {seq} was expected: a record is missing or out of order"
    if row.prev_hash != prev_hash:
        return f"prev_hash {row.prev_hash[:12]}… does not link to the previous record's hash {prev_hash[:12]}…"
    if row.body.startswith(UNREADABLE):
        return f"its stored body cannot be read ({row.body[len(UNREADABLE) :]}): the record was altered"
    computed = chain_hash(row.prev_hash, row.body)
    if computed != row.hash:
        return f"hash {row.hash[:12]}… does not match its content (computed {computed[:12]}…): the record was altered"
    try:
        record = row.record()
        derived = columns(record)
    except (msgspec.DecodeError, KeyError, TypeError) as error:
        return f"the stored body is not a valid record: {error}"
    if (record.writer, record.seq) != (row.writer, row.seq):
        return f"the hashed record says writer {_shown(record.writer)} seq {_shown(record.seq)}"
    for name in _INDEXED:
        if getattr(derived, name) != getattr(row, name):
            return f"column {name}={getattr(row, name)!r} differs from the hashed record ({getattr(derived, name)!r})"
    if indexes is not None:
        expected = (tuple(sorted(derived.fired)), tuple(sorted(derived.denied)))
        if indexes.get(row.id, ((), ())) != expected:
            return "its rows in log_fired/log_denied (the rule and policy filters) differ from the hashed record"
    return None


def _shown(value: object) -> object:
    return None if value is UNSET else value


def verify(rows: Iterable[StoredRecord], indexes: Mapping[int, Index] | None = None) -> VerifyReport:
    """Walk rows ordered by (writer, seq); stop at the first record whose hash or link is wrong.

    ``indexes`` (entry id -> its filter rows), when given, is checked against each body too."""
    count = chains = 0
    writer: str | None = None
    seq, prev_hash = 0, GENESIS
    for row in rows:
        if row.writer != writer:
            writer, seq, prev_hash, chains = row.writer, 0, GENESIS, chains + 1
        problem = _check(row, seq + 1, prev_hash, indexes)
        if problem is not None:
            return VerifyReport(count, chains, ok=False, error=f"{row.describe()}: {problem}")
        seq, prev_hash, count = row.seq, row.hash, count + 1
    return VerifyReport(count, chains, ok=True)


def verify_versions(versions: dict[str, list[VersionFile]]) -> tuple[int, str | None]:
    """Each stored version's id is the content hash of its files: recompute it from the stored
    contents, so an edited rule or policy file shown to reviewers is caught."""
    for version, files in sorted(versions.items()):
        for file in files:
            if hashlib.sha256(file.content).hexdigest() != file.sha256:
                return 0, f"version {version[:12]}…: {file.path} does not match its sha256 (the file was altered)"
        if content_hash((f.path, f.content) for f in files) != version:
            return (
                0,
                f"version {version[:12]}…: its files do not hash to the version id (a file was altered or removed)",
            )
    return len(versions), None

"""The decision log's records and its hash chain.  Pure: no storage here.

Every record (a decision, or an outcome reported later) is one JSON object in
canonical form: keys sorted, no whitespace, UTF-8.  That text is stored as is,
and chained::

    hash = sha256_hex(prev_hash + body)      # both as UTF-8 text

where ``prev_hash`` is the previous record's ``hash`` in the same chain, or 64
zeros for a chain's first record.  There is one chain per writer (one replica,
named by its writer id); each record carries its ``writer`` and its ``seq``
(1, 2, 3, ... within the chain), so a deleted or reordered record breaks the
walk.  ``log_store`` keeps the rows; ``verify`` below checks them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from service.domain.ruleset import content_hash

GENESIS = "0" * 64
RecordKind = Literal["decision", "outcome", "approval", "expiry"]
OutcomeStatus = Literal["SUCCEEDED", "FAILED", "CANCELLED"]

_CANONICAL = msgspec.json.Encoder(order="sorted")


def canonical(payload: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, UTF-8 (non-ASCII kept as is)."""
    return _CANONICAL.encode(payload).decode()


def now() -> str:
    """The log's time format: RFC 3339, UTC, microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def normalize_time(text: str) -> str:
    """An RFC 3339 time as the log stores it; a time without an offset is UTC.  ValueError if malformed."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def age_s(since: str, at: str) -> float:
    """Seconds from ``since`` to ``at`` (both times in the log's format), to the millisecond."""
    return round((datetime.fromisoformat(at) - datetime.fromisoformat(since)).total_seconds(), 3)


def later(moment: str, seconds: float) -> str:
    """The log's time ``seconds`` after ``moment`` (a time in the log's format)."""
    return (datetime.fromisoformat(moment) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class Columns(msgspec.Struct, frozen=True):
    """What the store indexes a record by; always derived from the hashed body."""

    kind: str
    decision_id: str
    created_at: str
    caller: str
    ruleset: str | None = None
    ruleset_version: str | None = None
    bundle_revision: str | None = None
    decision_type: str | None = None
    execution_status: str | None = None
    org_id: str | None = None
    fired: tuple[tuple[str, bool], ...] = ()  # (rule id, won)
    denied: tuple[tuple[str, str], ...] = ()  # (policy, violation id)


def columns(record: dict[str, Any]) -> Columns:
    """The indexed columns of a record (a decoded body)."""
    base = Columns(record["kind"], record["decision_id"], record["created_at"], record["caller"])
    if record["kind"] != "decision":
        return base
    org_id = record.get("facts", {}).get("org_id")
    guardrails = record.get("guardrails") or {}
    return msgspec.structs.replace(
        base,
        ruleset=record["ruleset"]["name"],
        ruleset_version=record["ruleset"]["version"],
        bundle_revision=record["bundle_revision"],
        decision_type=record["decision"]["decision_type"],
        execution_status=record["execution"]["status"],
        org_id=None if org_id is None else str(org_id),
        fired=tuple((r["id"], bool(r["won"])) for r in record.get("fired_rules", [])),
        denied=tuple((v["policy"], v["id"]) for v in guardrails.get("violations", [])),
    )


class VersionFile(msgspec.Struct, frozen=True):
    path: str
    sha256: str
    content: bytes


class StoredRecord(msgspec.Struct, frozen=True):
    """One row of the log as the store holds it."""

    id: int
    writer: str
    seq: int
    body: str
    prev_hash: str
    hash: str
    kind: str
    decision_id: str
    created_at: str
    caller: str
    ruleset: str | None
    ruleset_version: str | None
    bundle_revision: str | None
    decision_type: str | None
    execution_status: str | None
    org_id: str | None

    def record(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(self.body)
        return decoded

    def describe(self) -> str:
        return f"record #{self.id} (writer {self.writer}, seq {self.seq}, decision {self.decision_id})"


class Head(msgspec.Struct, frozen=True):
    writer: str
    seq: int
    hash: str
    created_at: str


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
    computed = chain_hash(row.prev_hash, row.body)
    if computed != row.hash:
        return f"hash {row.hash[:12]}… does not match its content (computed {computed[:12]}…): the record was altered"
    try:
        record = row.record()
        derived = columns(record)
    except (msgspec.DecodeError, KeyError, TypeError) as error:
        return f"the stored body is not a valid record: {error}"
    if (record.get("writer"), record.get("seq")) != (row.writer, row.seq):
        return f"the hashed record says writer {record.get('writer')} seq {record.get('seq')}"
    for name in _INDEXED:
        if getattr(derived, name) != getattr(row, name):
            return f"column {name}={getattr(row, name)!r} differs from the hashed record ({getattr(derived, name)!r})"
    if indexes is not None:
        expected = (tuple(sorted(derived.fired)), tuple(sorted(derived.denied)))
        if indexes.get(row.id, ((), ())) != expected:
            return "its rows in log_fired/log_denied (the rule and policy filters) differ from the hashed record"
    return None


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


class DecisionQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Filters of ``GET /decisions``; every one optional, combined with AND."""

    since: str | None = None  # RFC 3339, inclusive
    until: str | None = None  # RFC 3339, exclusive
    ruleset: str | None = None
    decision_type: str | None = None
    status: str | None = None  # execution status
    org_id: str | None = None
    rule: str | None = None  # a rule id that fired
    denied_by: str | None = None  # a guardrail policy (package or id) that denied
    caller: str | None = None
    cursor: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,18}$")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


class VersionInfo(msgspec.Struct, frozen=True):
    version: str
    first_loaded_at: str
    last_loaded_at: str
    loads: int
    rulesets: dict[str, str]  # ruleset name -> its own version
    git: dict[str, Any] | None = None


PENDING = "PENDING"  # a pending approval's status until it is resolved
ResolvedStatus = Literal["EXECUTED", "REJECTED", "EXPIRED"]


class PendingItem(msgspec.Struct, frozen=True):
    """A decision waiting for a person (its execution.status is PENDING_APPROVAL)."""

    decision_id: str
    ruleset: str
    requested_by: str
    created_at: str
    expires_at: str
    decision: StoredRecord


class Resolution(msgspec.Struct, frozen=True):
    """How a pending approval ends.  The store applies it only while the item is still PENDING,
    and an EXECUTED or REJECTED only before ``expires_at``, an EXPIRED only from then on."""

    decision_id: str
    status: ResolvedStatus
    at: str
    by: str


class WindowStats(msgspec.Struct, frozen=True):
    """The decisions logged in [since, until)."""

    decisions: int
    by_decision_type: dict[str, int]
    by_execution_status: dict[str, int]
    denied_by_policy: dict[str, int]  # decisions a policy denied at least once
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    approvals_resolved: dict[str, int] = {}  # pending approvals EXECUTED, REJECTED or EXPIRED in the window

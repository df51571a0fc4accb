"""The decision log's records and its hash chain.  Pure: no storage here.

Every record is one ``Record``: a decision, or an outcome, approval or expiry
about it later, each a frozen Struct tagged by ``kind``.  It is stored as one
JSON object in canonical form: keys sorted, no whitespace, UTF-8, and chained::

    hash = sha256_hex(prev_hash + body)      # both as UTF-8 text

where ``prev_hash`` is the previous record's ``hash`` in the same chain, or 64
zeros for a chain's first record.  There is one chain per writer (one replica,
named by its writer id); each record carries its ``writer`` and its ``seq``
(1, 2, 3, ... within the chain), so a deleted or reordered record breaks the
walk.  The store keeps the rows; ``service.domain.chain`` verifies them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from service.domain.context import ContextSource
from service.domain.decision import (
    Answer,
    Decision,
    Execution,
    FiredRule,
    GuardrailsReport,
    Proposal,
    RulesetRef,
    WhyNot,
    answer,
)
from service.domain.proposed import ExternalDecision, Proposer, RulesWould

GENESIS = "0" * 64
# how a body the store could not decode reads (then the reason): never JSON, and no record hashes to it
UNREADABLE = "\x00unreadable: "
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


# --- the record: one JSON object per kind, tagged by "kind" -------------------------
# Encoded with ``canonical`` (keys sorted); a field that is UNSET is left out, a None is
# written as null, so each kind keeps the exact keys its bodies have always had.


class _Entry(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    decision_id: str
    created_at: str
    caller: str
    writer: str | UnsetType = UNSET  # the chain's writer and place in it: set by the store
    seq: int | UnsetType = UNSET

    @property
    def kind(self) -> str:
        return str(self.__struct_config__.tag)


class ApprovalTerms(msgspec.Struct, frozen=True):  # when a decision that waits for a person expires
    expiry_s: float
    expires_at: str


class DecisionRecord(_Entry, frozen=True, kw_only=True, tag="decision"):
    """A decision: everything a reviewer needs to see why."""

    run_id: str
    agent: str
    ruleset: RulesetRef
    bundle_revision: str
    facts: dict[str, Any]
    fired_rules: list[FiredRule]
    proposal: Proposal | None
    guardrails: GuardrailsReport
    decision: Decision
    execution: Execution
    summary: str
    error: str | None
    latency_ms: dict[str, float]
    not_fired: list[WhyNot] | UnsetType = UNSET  # only when asked with ?explain=full
    approval: ApprovalTerms | UnsetType = UNSET  # only while it waits for a person
    proposer: Proposer | UnsetType = UNSET  # only for a proposal made elsewhere (POST /v1/policy/evaluate)
    rules_would: RulesWould | UnsetType = UNSET  # with it: the ruleset's own rules as a second opinion
    context: dict[str, ContextSource] | UnsetType = UNSET  # only when fact groups were fetched: their sources

    def answer(self) -> Answer:
        return answer(self.decision, self.execution, self.fired_rules, self.proposal, self.guardrails)

    def denied_actions(self) -> list[dict[str, Any]]:
        """The proposed actions the guardrails denied: those a violation names, all when one names none."""
        if self.proposal is None or not self.guardrails.violations:
            return []
        named = {v.action_index for v in self.guardrails.violations}
        return [a for i, a in enumerate(self.proposal.actions) if None in named or i in named]


class OutcomeReport(msgspec.Struct, frozen=True):
    status: str
    detail: str


class ActionDelivery(msgspec.Struct, frozen=True):  # an action's delivery to its executor, in its outcome
    index: int  # in the decision's execution actions
    type: str
    idempotency_key: str  # decision_id:index
    state: str  # DELIVERED or DEAD
    attempts: int
    http_status: int | None  # of the last attempt; None when nothing answered


class OutcomeRecord(_Entry, frozen=True, kw_only=True, tag="outcome"):  # reported after the decision
    outcome: OutcomeReport
    action: ActionDelivery | UnsetType = UNSET  # only for an outcome the delivery of an action recorded


class ApprovalAnswer(msgspec.Struct, frozen=True):
    status: str  # EXECUTED or REJECTED
    reason: str
    requested_by: str
    expires_at: str | None


class ApprovalRecord(_Entry, frozen=True, kw_only=True, tag="approval"):  # a person's answer
    approval: ApprovalAnswer


class Escalation(msgspec.Struct, frozen=True):
    decision_type: str | None  # None: the ruleset could not be loaded at that version
    autonomy: str


class ExpiryTerms(msgspec.Struct, frozen=True):
    status: str  # EXPIRED
    reason: str
    requested_by: str
    expires_at: str
    escalated: bool
    escalation: Escalation


class ExpiryRecord(_Entry, frozen=True, kw_only=True, tag="expiry"):  # nobody answered in time
    approval: ExpiryTerms


class ExternalRecord(_Entry, frozen=True, kw_only=True, tag="external"):
    """A decision made and executed elsewhere, recorded for audit only (POST /v1/policy/decisions):
    never one of opsgate's own, which are ``decision`` records."""

    external: ExternalDecision


Record = DecisionRecord | OutcomeRecord | ApprovalRecord | ExpiryRecord | ExternalRecord
_RECORD: msgspec.json.Decoder[Record] = msgspec.json.Decoder(Record)


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
    latency_ms: float | None = None  # a decision's end-to-end time, for the dashboard's percentiles
    fired: tuple[tuple[str, bool], ...] = ()  # (rule id, won)
    denied: tuple[tuple[str, str], ...] = ()  # (policy, violation id)


def columns(record: Record) -> Columns:
    """The indexed columns of a record."""
    base = Columns(record.kind, record.decision_id, record.created_at, record.caller)
    if isinstance(record, ExternalRecord):
        return _external_columns(base, record.external)
    if not isinstance(record, DecisionRecord):
        return base
    org_id = record.facts.get("org_id")
    if isinstance(org_id, dict):  # a redacted org_id (service/domain/redaction.py): indexed by its keyed hash
        org_id = org_id.get("hash")
    return msgspec.structs.replace(
        base,
        ruleset=record.ruleset.name,
        ruleset_version=record.ruleset.version,
        bundle_revision=record.bundle_revision,
        decision_type=record.decision.decision_type,
        execution_status=record.execution.status,
        org_id=None if org_id is None else str(org_id),
        latency_ms=record.latency_ms.get("total"),
        fired=tuple((r.id, r.won) for r in record.fired_rules),
        denied=tuple((v.policy, v.id) for v in record.guardrails.violations),
    )


def _external_columns(base: Columns, external: ExternalDecision) -> Columns:
    org_id = external.facts.get("org_id")
    return msgspec.structs.replace(
        base,
        ruleset=external.ruleset,
        decision_type=external.decision_type,
        execution_status=external.status,
        org_id=None if org_id is None else str(org_id),
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

    def record(self) -> Record:
        return _RECORD.decode(self.body)

    def describe(self) -> str:
        return f"record #{self.id} (writer {self.writer}, seq {self.seq}, decision {self.decision_id})"


class Head(msgspec.Struct, frozen=True):
    writer: str
    seq: int
    hash: str
    created_at: str


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

"""The decision log's ports, one small Protocol per store, and the log they make up together."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from service.domain.record import (
    ApprovalRecord,
    DecisionQuery,
    ExpiryRecord,
    Head,
    PendingItem,
    Record,
    Resolution,
    StoredRecord,
    VersionFile,
    VersionInfo,
)
from service.domain.stats import WindowStats
from service.ports.checkpoints import ChainReader
from service.ports.executors import Outbox
from service.ports.export import ExportCursors


class LogHealth(msgspec.Struct, frozen=True):
    """Whether the log commits now and, counted by cause, the writes it could not commit."""

    ok: bool = True
    cause: str | None = None  # of the failure that made it not ok (read_only, disk_full, unreachable, timeout...)
    error: str | None = None  # that failure's message
    errors: dict[str, int] = msgspec.field(default_factory=dict)  # failed writes since start, by cause


class RecordStore(Protocol):
    """The hash-chained records: this writer's chain is appended to, every chain is read."""

    @property
    def writer(self) -> str: ...

    async def append(self, payload: Record) -> StoredRecord: ...

    async def append_many(self, payloads: list[Record]) -> list[StoredRecord]:
        """Several records in one transaction, in order."""

    async def get(self, decision_id: str) -> list[StoredRecord]: ...

    async def get_many(self, decision_ids: list[str]) -> list[StoredRecord]:
        """Every record about any of these decisions, in the log's order."""

    async def query(self, query: DecisionQuery, kind: str = "decision") -> tuple[list[StoredRecord], str | None]:
        """Decisions matching every filter (``status``: the current one), newest first, and the next cursor;
        ``kind="external"``: those recorded from elsewhere (POST /v1/policy/decisions) instead."""

    async def heads(self) -> list[Head]: ...


class ApprovalStore(Protocol):
    """The decisions pending a person, and how each ends."""

    async def resolve(self, payload: ApprovalRecord | ExpiryRecord, resolution: Resolution) -> StoredRecord:
        """Append ``payload`` and apply ``resolution`` in one transaction, or neither (then raise
        NotFound, AlreadyDecided, ApprovalExpired or Conflict)."""

    async def pending(self, at: str, limit: int) -> list[PendingItem]: ...

    async def due(self, at: str, limit: int) -> list[PendingItem]: ...

    async def pending_count(self, at: str) -> tuple[int, str | None]: ...


class VersionStore(Protocol):
    """The registry of loaded ruleset versions and their files."""

    async def register_version(
        self, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: dict[str, Any] | None
    ) -> None: ...

    async def versions(self) -> list[VersionInfo]: ...

    async def version_files(self, version: str) -> list[VersionFile]: ...


class SessionStore(Protocol):
    """Where revoked session ids are kept, each until the expiry of its session."""

    async def revoke_session(self, sid: str, expires: int) -> None: ...

    async def session_revoked(self, sid: str) -> bool: ...


class StatisticsStore(Protocol):
    """Figures over a window of the log, for the dashboard."""

    async def window_stats(self, since: str, until: str, bucket: str = "hour") -> WindowStats: ...


class Log(Protocol):
    """The stores of one decision log, opened and closed together (the composition root holds it)."""

    @property
    def records(self) -> RecordStore: ...

    @property
    def approvals(self) -> ApprovalStore: ...

    @property
    def versions(self) -> VersionStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def statistics(self) -> StatisticsStore: ...

    @property
    def chains(self) -> ChainReader: ...

    @property
    def exports(self) -> ExportCursors: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def writer(self) -> str: ...

    @property
    def description(self) -> str: ...

    def health(self) -> LogHealth:
        """Not ok from a write that could not commit (or one stuck past its deadline) until one commits."""

    def close(self) -> None: ...

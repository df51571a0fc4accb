"""The exporter's ports: a sink messages go to, and the cursor store it reads the log through."""

from __future__ import annotations

from typing import Annotated, Protocol

import msgspec

from service.domain.export import Message
from service.domain.record import StoredRecord


class ExportStatus(msgspec.Struct, frozen=True):
    """One sink as /ready and /metrics show it."""

    lag: int  # records of this process's chain not yet acknowledged by the sink
    exported_seq: int  # the sink's cursor: the last seq it acknowledged
    ok: bool  # False from a failed send until one succeeds
    error: str | None
    checkpoints: int  # checkpoint files shipped since start


class SinkUnavailable(Exception):
    """A sink did not acknowledge a message.  Never answered to a caller: the exporter keeps its
    cursor, reports the sink down on /ready and /metrics, and tries again later."""


class Sink(Protocol):
    """Somewhere outside the log that takes its messages (a JetStream stream, an HTTP endpoint)."""

    @property
    def name(self) -> str: ...

    async def send(self, messages: list[Message]) -> None:
        """Deliver ``messages`` in order; return only once every one is acknowledged, else raise
        SinkUnavailable (some may have arrived: the exporter sends them again, at least once)."""

    async def close(self) -> None: ...


class ExportCursors(Protocol):
    """One writer's chain as the exporter reads it, and each sink's place in it (kept in the log's database)."""

    async def position(self, sink: str) -> int:
        """The last seq of this writer's chain that ``sink`` acknowledged (0: none)."""

    async def advance(self, sink: str, seq: int) -> None: ...

    async def after(self, seq: int, limit: int) -> list[StoredRecord]:
        """This writer's records after ``seq``, in order, at most ``limit``."""

    async def head(self) -> int:
        """The last seq of this writer's chain (0 when empty)."""

    async def exported_checkpoints(self, sink: str) -> set[str]: ...

    async def checkpoint_exported(self, sink: str, name: str) -> None: ...


# --- configuration: the export config file (docs/export.md), decoded strictly -----------------------


class _Sink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    name: str  # the cursor's key in the log: renaming a sink starts it again from the first record


class NatsSinkConfig(_Sink, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="nats"):
    url: str = "nats://127.0.0.1:4222"
    stream: str = "OPSGATE_LOG"  # created (subjects <subject>.>) when it does not exist
    subject: str = "opsgate.log"  # a record goes to <subject>.<writer>, a checkpoint to <subject>.checkpoints
    ack_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0  # this long without progress: the batch fails


class HttpSinkConfig(_Sink, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="http"):
    url: str
    secret_env: str | None = None  # the HMAC-SHA256 secret: in this environment variable...
    secret_file: str | None = None  # ...or in this file (one of the two)
    attempts: Annotated[int, msgspec.Meta(ge=1)] = 5  # per message, before the sink counts as down
    backoff_s: Annotated[float, msgspec.Meta(gt=0)] = 0.1  # first retry delay, doubled each time, with jitter
    max_backoff_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0


SinkConfig = NatsSinkConfig | HttpSinkConfig


class ExportConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sinks: list[SinkConfig]
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500  # records read and sent per round
    poll_s: Annotated[float, msgspec.Meta(gt=0)] = 0.2  # between two looks at the log when all is sent
    retry_max_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0  # longest pause before trying a down sink again

"""The executors' ports: the outbox of approved actions, what delivers one, and the config file's format.

An action of an APPROVED decision (or of one a person EXECUTED) whose type has an executor is
queued in the outbox in the transaction that commits the decision (or the approval); the
delivery loop (``service.usecases.executors``) reads the due items of this writer and settles
each: DELIVERED with its outcome record, retried later, or DEAD after its executor's attempts.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

import msgspec

from service.domain.record import OutcomeRecord

OutboxState = Literal["PENDING", "DELIVERED", "DEAD"]
OUTBOX_STATES: tuple[OutboxState, ...] = ("PENDING", "DELIVERED", "DEAD")


class OutboxItem(msgspec.Struct, frozen=True):
    """One queued action: the body its executor gets (canonical JSON) and where its delivery stands."""

    decision_id: str
    action_index: int
    action_type: str
    body: str
    attempts: int  # delivery attempts made so far
    state: str = "PENDING"
    last_error: str | None = None
    next_at: str | None = None  # when the next attempt is due (the log's time), while PENDING
    settled_at: str | None = None  # when it was DELIVERED or went DEAD

    @property
    def key(self) -> str:
        """The idempotency key its executor gets: the same on every attempt."""
        return f"{self.decision_id}:{self.action_index}"


class Answered(msgspec.Struct, frozen=True):
    """What one attempt got: the HTTP status and body, or ``error`` when nothing (or a non-2xx) came back."""

    status: int | None
    body: str
    error: str | None = None


class Outbox(Protocol):
    """This writer's queued actions, kept in the decision log's database."""

    async def due(self, at: str, limit: int) -> list[OutboxItem]:
        """PENDING items of this writer whose next attempt is due at ``at``, oldest first."""

    async def settle(self, item: OutboxItem, state: OutboxState, outcome: OutcomeRecord, at: str) -> bool:
        """Mark ``item`` DELIVERED or DEAD and chain ``outcome`` in one transaction, only while it is still
        PENDING; False (nothing written) when it was settled before."""

    async def retry(self, item: OutboxItem, error: str, next_at: str) -> None:
        """Count a failed attempt of ``item`` and when to try again."""

    async def counts(self) -> dict[str, int]:
        """Items by state, every writer's, each state named (the metrics and the dashboard)."""

    async def of_decision(self, decision_id: str) -> list[OutboxItem]:
        """The decision's queued actions, by index (the reviewer page)."""


class ActionSender(Protocol):
    """Delivers one action to its executor (an HTTP endpoint)."""

    async def send(self, item: OutboxItem) -> Answered: ...

    async def close(self) -> None: ...


# --- configuration: the executors file (docs/executors.md), decoded strictly -----------------------


class ExecutorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str
    secret_env: str | None = None  # the HMAC-SHA256 secret: in this environment variable...
    secret_file: str | None = None  # ...or in this file (one of the two)
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # one attempt, connect to answer
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 8  # then the action is DEAD


class ExecutorsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    executors: dict[str, ExecutorConfig]  # action type -> its executor
    backoff_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0  # first retry delay, doubled each time, with jitter
    max_backoff_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    poll_s: Annotated[float, msgspec.Meta(gt=0)] = 0.2  # between two looks at the outbox when nothing is due
    batch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 32  # actions delivered at a time

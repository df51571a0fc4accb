"""What the decision use case tells the tracer: one finished decision (or batch) and its stages.

The stages are timed by the use case as it goes (``time.perf_counter`` seconds); the tracer turns them
into spans afterwards (service/adapters/tracing.py), so a decision costs nothing more than its timer
when tracing is off (``NO_TRACER``).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

#: The child spans of a decision's span, in order.
STAGES = ("decode", "context", "rules", "guardrails", "log")

Attribute = str | int | list[str]


class TraceParent(msgspec.Struct, frozen=True):
    """The caller's W3C trace context: its ``traceparent`` and ``tracestate`` headers, as sent."""

    traceparent: str
    tracestate: str = ""


class Stage(msgspec.Struct, frozen=True):
    name: str  # one of STAGES
    start: float  # time.perf_counter() seconds
    end: float


class DecisionTrace(msgspec.Struct, frozen=True):
    """One decide call, finished (or failed: ``error``)."""

    name: str  # the span's name: "opsgate.decide" or "opsgate.decide_batch"
    start: float
    end: float
    stages: list[Stage]
    attributes: dict[str, Attribute]
    parent: TraceParent | None = None
    error: str | None = None


class Tracer(Protocol):
    """Exports decisions as traces; ``enabled`` is False when nothing is exported (build no trace then)."""

    @property
    def enabled(self) -> bool: ...

    def record(self, trace: DecisionTrace) -> None: ...

    def close(self) -> None:
        """Export what is still buffered, then stop."""
        ...


class _NoTracer:
    enabled = False

    def record(self, trace: DecisionTrace) -> None:
        pass

    def close(self) -> None:
        pass


#: Tracing off: the default of every decision service.
NO_TRACER: Tracer = _NoTracer()

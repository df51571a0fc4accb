"""What the decision use case tells the metrics of each answered call, and what admission control shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import msgspec

from service.domain.decision import Violation


class Answered(msgspec.Struct, frozen=True):
    """One answered decision, as the metrics count it."""

    ruleset: str
    decision_type: str
    status: str  # its execution status
    violations: list[Violation]


class AdmissionStats(msgspec.Struct, frozen=True):
    """This process's admission control (service/usecases/admission.py), read at each scrape."""

    limit: int  # decisions allowed in flight
    in_flight: int  # decisions admitted and not yet answered
    waiting: int  # decisions waiting for room
    shed: int  # requests answered 503 overloaded
    admitted: int  # requests admitted
    waited_s: float  # the time the admitted requests waited for room, in all


class DecisionObserver(Protocol):
    """Told of each answered decide call (service/adapters/metrics.py counts them)."""

    def decided(self, answers: Sequence[Answered], laps_ms: Mapping[str, float]) -> None: ...

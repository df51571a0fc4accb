"""What the decision use case tells the metrics of each answered call."""

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


class DecisionObserver(Protocol):
    """Told of each answered decide call (service/adapters/metrics.py counts them)."""

    def decided(self, answers: Sequence[Answered], laps_ms: Mapping[str, float]) -> None: ...

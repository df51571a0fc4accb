"""The flip matrix: how two versions decide the same facts, counted old -> new.

Pure: ``opsgate replay`` fills one from the decision log, ``serve --shadow`` from
live requests.  Memory stays bounded whatever the number of decisions: counts,
a few samples per flip and a capped number of distinct skip reasons.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from service.domain.decision import Answer

MAX_REASONS = 50  # distinct "not replayable" reasons kept; the rest are counted together
OTHER_REASONS = "(other reasons)"


class Side(msgspec.Struct, frozen=True):
    """One version's answer: the final decision type, the winning rules, the violated policy ids."""

    decision_type: str
    rules: list[str]
    violations: list[str]

    @classmethod
    def of(cls, answer: Answer) -> Side:
        return cls(answer.decision_type, answer.winners, answer.violations)


class Sample(msgspec.Struct, frozen=True):
    decision_id: str
    old: Side
    new: Side


class Flip(msgspec.Struct, frozen=True):
    old: str
    new: str
    count: int
    samples: list[Sample]


class Skipped(msgspec.Struct, frozen=True):
    reason: str
    count: int
    samples: list[str]  # decision ids


class FlipSummary(msgspec.Struct, frozen=True):
    compared: int
    changed: int  # the final decision type differs
    matrix: dict[str, dict[str, int]]  # old type -> new type -> count, unchanged on the diagonal
    flips: list[Flip]  # off the diagonal, largest first
    not_comparable: list[Skipped]


# an answer that failed closed (``Answer.no_verdict``) is skipped with these reasons: its
# escalation says nothing about the rules or policies, so comparing it would show a false flip
NO_LOGGED_VERDICT = "the logged decision had no guardrail verdict"
NO_LIVE_VERDICT = "the live decision had no guardrail verdict"


class FlipMatrix:
    """Counts old -> new; keeps ``samples`` decisions per flip, the first ones or (``recent``) the latest."""

    def __init__(self, samples: int, *, recent: bool = False) -> None:
        self.samples = samples
        self.recent = recent
        self.counts: dict[tuple[str, str], int] = {}
        self.examples: dict[tuple[str, str], deque[Sample]] = {}
        self.skipped: dict[str, int] = {}
        self.skipped_examples: dict[str, deque[str]] = {}

    def add(self, decision_id: str, old: Side, new: Side) -> None:
        key = (old.decision_type, new.decision_type)
        self.counts[key] = self.counts.get(key, 0) + 1
        if key[0] != key[1]:
            self._keep(self.examples.setdefault(key, deque(maxlen=self.samples)), Sample(decision_id, old, new))

    def skip(self, decision_id: str, reason: str) -> None:
        """A decision that could not be compared, counted under its reason."""
        if reason not in self.skipped and len(self.skipped) >= MAX_REASONS:
            reason = OTHER_REASONS
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self._keep(self.skipped_examples.setdefault(reason, deque(maxlen=self.samples)), decision_id)

    def _keep(self, kept: deque[Any], item: Any) -> None:
        if self.recent or len(kept) < self.samples:
            kept.append(item)

    @property
    def compared(self) -> int:
        return sum(self.counts.values())

    @property
    def changed(self) -> int:
        return sum(count for (old, new), count in self.counts.items() if old != new)

    def summary(self) -> FlipSummary:
        matrix: dict[str, dict[str, int]] = {}
        for (old, new), count in sorted(self.counts.items()):
            matrix.setdefault(old, {})[new] = count
        flips = [
            Flip(old, new, count, list(self.examples[(old, new)]))
            for (old, new), count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
            if old != new
        ]
        skipped = [
            Skipped(reason, count, list(self.skipped_examples[reason]))
            for reason, count in sorted(self.skipped.items(), key=lambda item: (-item[1], item[0]))
        ]
        return FlipSummary(self.compared, self.changed, matrix, flips, skipped)

"""The timing of one decide call: the laps the record and the metrics keep, and the stages its trace shows.

A decide call is timed as it goes (``Timer``); ``traced`` hands the finished call to the tracer as one
``DecisionTrace`` (service/ports/tracing.py), or builds nothing when tracing is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from service.domain.ruleset import Ruleset
from service.ports.tracing import Attribute, DecisionTrace, Stage, TraceParent, Tracer


class Timer:
    """Per-stage latencies of one decision, in milliseconds (``laps``), and the stages' bounds (``stages``)."""

    def __init__(self, started: float | None) -> None:
        self.last = self.start = started if started is not None else time.perf_counter()
        self.laps: dict[str, float] = {}
        self.stages: list[Stage] = []

    def lap(self, stage: str, *, keep: bool = True) -> None:
        """End ``stage`` now; ``keep=False``: a stage of the trace only, not one of the laps."""
        now = time.perf_counter()
        self.stages.append(Stage(stage, self.last, now))
        if keep:
            self.laps[stage] = round((now - self.last) * 1000, 3)
            self.laps["total"] = round((now - self.start) * 1000, 3)
        self.last = now


class Answers:
    """What a traced call answered, added as it is known: the span's attributes."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.types: list[str] = []
        self.statuses: list[str] = []

    def add(self, decision_id: str, decision_type: str, status: str) -> None:
        self.ids.append(decision_id)
        self.types.append(decision_type)
        self.statuses.append(status)

    def attributes(self, ruleset: Ruleset, *, batch: bool) -> dict[str, Attribute]:
        found: dict[str, Attribute] = {"opsgate.ruleset": ruleset.name, "opsgate.ruleset.version": ruleset.version}
        if batch:  # one span for the whole batch: its items' answers as lists, in order
            found.update({"opsgate.batch.items": len(self.ids), "opsgate.decision.ids": self.ids})
            found.update({"opsgate.decision.types": self.types, "opsgate.decision.statuses": self.statuses})
        elif self.ids:
            found.update({"opsgate.decision.id": self.ids[0], "opsgate.decision.type": self.types[0]})
            found["opsgate.decision.status"] = self.statuses[0]
        return found


@contextmanager
def traced(
    tracer: Tracer, ruleset: Ruleset, timer: Timer, parent: TraceParent | None, *, batch: bool = False
) -> Iterator[Answers]:
    """Trace the call the ``with`` block makes, as the span "opsgate.decide" (or "opsgate.decide_batch")
    with a child per stage ``timer`` saw; a call that raises is traced too, with its error."""
    answers = Answers()
    error: str | None = None
    try:
        yield answers
    except BaseException as failure:
        error = f"{type(failure).__name__}: {failure}"
        raise
    finally:
        if tracer.enabled:
            name = "opsgate.decide_batch" if batch else "opsgate.decide"
            attributes = answers.attributes(ruleset, batch=batch)
            end = time.perf_counter()
            tracer.record(DecisionTrace(name, timer.start, end, list(timer.stages), attributes, parent, error))

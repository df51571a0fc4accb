"""Prometheus metrics (GET /metrics), in a registry of each app's own.

Never the process-global default registry: several apps in one process (tests)
keep their own counts.  The decision service (service/usecases/decide.py) reports each answered call
through ``decided``; OPA's state (up, restarts, breaker) is read at scrape time
from the served version's guardrails; the pending approvals gauge is set by the
approvals queue (``set_pending``), or refreshed by a hook awaited before each
scrape (``on_scrape``).
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.registry import Collector

from service.adapters.opa.breaker import CLOSED, HALF_OPEN, OPEN
from service.domain.decision import Violation
from service.ports.export import ExportStatus
from service.ports.log import LogHealth
from service.ports.metrics import AdmissionStats, Answered

CONTENT_TYPE = "text/plain; version=0.0.4"  # the exposition generate_latest writes (the server adds the charset)
# the decision service's lap names -> the stage label ("decode" decodes and validates the facts)
STAGES = {"decode": "validate", "rules": "rules", "guardrails": "guardrails", "log": "log"}
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OpaStatus = Callable[[], Mapping[str, Any]]  # GET /ready's opa section of the version served now
LogStatus = Callable[[], LogHealth]  # the decision log's health (service.ports.log.Log.health)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "opsgate_decisions", "Decisions answered, by ruleset, decision type and execution status",
            ["ruleset", "decision_type", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "opsgate_decision_seconds", "End-to-end time of a decide call (a batch is one call)",
            buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.stages = Histogram(
            "opsgate_decision_stage_seconds", "Time of each stage of a decide call: validate, rules, guardrails, log",
            ["stage"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.log_append = Histogram(
            "opsgate_log_append_seconds", "Time to append (commit) a call's records to the decision log",
            buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.denials = Counter(
            "opsgate_guardrail_denials", "Decisions a guardrail policy denied, by policy and violation id",
            ["policy", "id"], registry=r,
        )  # fmt: skip
        self.pending = Gauge("opsgate_pending_approvals", "Decisions waiting for a human approval", registry=r)
        _gc_metrics(r)
        self.export_lag = Gauge(
            "opsgate_export_lag", "Records of this process's chain not yet acknowledged by an export sink",
            ["sink"], registry=r,
        )  # fmt: skip
        self.export_up = Gauge(
            "opsgate_export_up", "1 while an export sink acknowledges, 0 from a failed send until one succeeds",
            ["sink"], registry=r,
        )  # fmt: skip
        self.actions, self.deliveries = _executor_metrics(r)
        self._opa, self._log, self._admission = _OpaCollector(), _LogCollector(), _AdmissionCollector()
        for collector in (self._opa, self._log, self._admission):
            r.register(collector)
        self._hooks: list[Callable[[], Awaitable[None]]] = []

    # --- fed by the decision service, the served version and the approvals queue -------------------

    def decided(self, answers: Sequence[Answered], laps_ms: Mapping[str, float]) -> None:
        """One decide call answered: its decisions and its stage times (the decision service's laps, in ms)."""
        for answer in answers:
            self.decisions.labels(answer.ruleset, answer.decision_type, answer.status).inc()
            for policy, violation_id in _denials(answer.violations):
                self.denials.labels(policy, violation_id).inc()
        for lap, stage in STAGES.items():
            if lap in laps_ms:
                self.stages.labels(stage).observe(laps_ms[lap] / 1000)
        if "log" in laps_ms:
            self.log_append.observe(laps_ms["log"] / 1000)
        if "total" in laps_ms:
            self.latency.observe(laps_ms["total"] / 1000)

    def watch_opa(self, status: OpaStatus) -> None:
        """Where OPA's up, restarts and breaker state are read at each scrape."""
        self._opa.status = status

    def watch_log(self, health: LogStatus) -> None:
        """Where the decision log's health and failed writes by cause are read at each scrape."""
        self._log.health = health

    def watch_admission(self, stats: Callable[[], AdmissionStats]) -> None:
        """Where the admission control's counts (in flight, shed, waited) are read at each scrape."""
        self._admission.stats = stats

    def set_pending(self, count: int) -> None:
        """The number of decisions waiting for approval now."""
        self.pending.set(count)

    def set_export(self, sinks: Mapping[str, ExportStatus]) -> None:
        """Each export sink's lag and state now (service/usecases/export.py)."""
        for name, status in sinks.items():
            self.export_lag.labels(name).set(status.lag)
            self.export_up.labels(name).set(int(status.ok))

    def set_actions(self, counts: Mapping[str, int]) -> None:
        """The outbox's actions by state now (service/usecases/executors.py)."""
        for state, count in counts.items():
            self.actions.labels(state).set(count)

    def delivered(self, action_type: str, result: str) -> None:
        """One delivery attempt ended: delivered, retried or dead."""
        self.deliveries.labels(action_type, result).inc()

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` before each scrape (e.g. to ``set_pending`` from the store)."""
        self._hooks.append(hook)

    async def render(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        for hook in self._hooks:
            await hook()
        return generate_latest(self.registry)


def _gc_metrics(registry: CollectorRegistry) -> None:
    """The collector's own counts (python_gc_*: collections of each generation, what they freed) and the
    objects kept out of its sight: what the start made (service/heap.py), read at each scrape."""
    GCCollector(registry=registry)
    frozen = Gauge("opsgate_gc_frozen_objects", "Objects kept out of the garbage collector's sight", registry=registry)
    frozen.set_function(gc.get_freeze_count)


def _executor_metrics(registry: CollectorRegistry) -> tuple[Gauge, Counter]:
    """The outbox of approved actions by state, and this process's delivery attempts."""
    actions = Gauge(
        "opsgate_executor_actions", "Approved actions in the outbox by state (PENDING, DELIVERED, DEAD)",
        ["state"], registry=registry,
    )  # fmt: skip
    attempts = Counter(
        "opsgate_executor_attempts", "Delivery attempts of this process by action type and result",
        ["action_type", "result"], registry=registry,
    )  # fmt: skip
    return actions, attempts


def _denials(violations: Iterable[Violation]) -> list[tuple[str, str]]:
    """Each (policy, id) once per decision, however many actions it denied."""
    return list(dict.fromkeys((v.policy, v.id) for v in violations))


class _OpaCollector(Collector):
    """OPA's state, read from the served guardrails when scraped."""

    def __init__(self) -> None:
        self.status: OpaStatus | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # the families vary with nothing; collect() is cheap and side-effect free

    def collect(self) -> Iterator[Metric]:
        if self.status is None:
            return
        opa = self.status()
        breaker = opa["breaker"]
        yield _gauge("opsgate_opa_up", "1 when OPA answers its periodic health check", int(bool(opa["up"])))
        yield _counter("opsgate_opa_restarts", "Restarts of the OPA child (of the version served)", opa["restarts"])
        yield _counter(
            "opsgate_opa_unhealthy_kills", "OPA children killed for staying unhealthy", opa["unhealthy_kills"]
        )
        state = GaugeMetricFamily(
            "opsgate_opa_breaker_state", "The OPA circuit breaker's state: 1 for the current one", labels=["state"]
        )
        for name in (CLOSED, OPEN, HALF_OPEN):
            state.add_metric([name], 1 if breaker["state"] == name else 0)
        yield state
        yield _counter("opsgate_opa_breaker_opened", "Times the OPA circuit breaker opened", breaker["opened"])
        yield _counter(
            "opsgate_opa_breaker_rejected", "OPA queries answered unavailable by the open breaker", breaker["rejected"]
        )


class _LogCollector(Collector):
    """The decision log's health, read from the log when scraped."""

    def __init__(self) -> None:
        self.health: LogStatus | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.health is None:
            return
        health = self.health()
        yield _gauge("opsgate_decision_log_up", "1 while the decision log commits, 0 from a failed write", health.ok)
        errors = CounterMetricFamily(
            "opsgate_decision_log_errors", "Decision log writes that could not commit, by cause", labels=["cause"]
        )
        for cause, count in sorted(health.errors.items()):
            errors.add_metric([cause], count)
        yield errors


class _AdmissionCollector(Collector):
    """The bound on decisions in flight, read from the process's admission control when scraped."""

    def __init__(self) -> None:
        self.stats: Callable[[], AdmissionStats] | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        now = self.stats()
        yield _counter("opsgate_shed", "Decide calls answered 503 overloaded, before any work", now.shed)
        yield _gauge("opsgate_in_flight", "Decisions being decided now (a batch counts its items)", now.in_flight)
        yield _gauge("opsgate_in_flight_limit", "Decisions allowed in flight in this process", now.limit)
        yield _gauge("opsgate_admission_waiting", "Decisions waiting for room to be decided", now.waiting)
        yield SummaryMetricFamily(
            "opsgate_admission_wait_seconds", "Time admitted decide calls waited for room",
            count_value=now.admitted, sum_value=now.waited_s,
        )  # fmt: skip


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)

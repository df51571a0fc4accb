"""OpenTelemetry traces of decisions: the only module that imports opentelemetry.

A decision (or a batch) becomes one span, "opsgate.decide" ("opsgate.decide_batch"), with one child per
stage (decode, context, rules, guardrails, log), built when the call has finished from the times the
use case took (service/usecases/timing.py).  The span continues the caller's W3C ``traceparent``.
The provider is this process's own, made in the composition root when the service starts: with
``serve --workers N`` each worker makes its own after the fork, so no exporter thread is lost to it.
The SDK reads its own ``OTEL_*`` variables (the OTLP endpoint, headers and timeout, the batch
processor's delays); the settings say which exporters run at all (service/settings.py).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.ports.tracing import NO_TRACER, DecisionTrace, Tracer

_PROPAGATOR = TraceContextTextMapPropagator()
#: How long closing waits for the buffered spans to leave before it gives them up: a collector that is
#: down must not hold up a stop (the OTLP exporter retries for up to OTEL_EXPORTER_OTLP_TIMEOUT, 10 s).
CLOSE_TIMEOUT_S = 2.0


class OpenTelemetryTracer:
    """Records each decision on ``provider``'s tracer; ``close`` exports what is buffered (for at most
    CLOSE_TIMEOUT_S, then ``exporters`` are stopped) and shuts the provider down."""

    enabled = True

    def __init__(self, provider: TracerProvider, exporters: Sequence[SpanExporter] = ()) -> None:
        self.provider = provider
        self.exporters = list(exporters)
        self.tracer = provider.get_tracer("opsgate")

    def record(self, decision: DecisionTrace) -> None:
        offset = time.time_ns() - time.perf_counter_ns()  # perf_counter seconds -> epoch nanoseconds

        def at(seconds: float) -> int:
            return int(seconds * 1e9) + offset

        parent = None
        if decision.parent is not None:
            carrier = {"traceparent": decision.parent.traceparent, "tracestate": decision.parent.tracestate}
            parent = _PROPAGATOR.extract(carrier)  # a malformed traceparent starts a new trace
        span = self.tracer.start_span(
            decision.name, parent, trace.SpanKind.SERVER, dict(decision.attributes), start_time=at(decision.start)
        )
        inside = trace.set_span_in_context(span)
        for stage in decision.stages:
            self.tracer.start_span(stage.name, inside, start_time=at(stage.start)).end(at(stage.end))
        if decision.error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, decision.error))
        span.end(at(decision.end))

    def close(self) -> None:
        closing = threading.Thread(target=self.provider.shutdown, name="opsgate-traces-close", daemon=True)
        closing.start()  # the batch processors export what they still hold
        closing.join(CLOSE_TIMEOUT_S)
        if closing.is_alive():  # the collector is down or slow: stop the exporters' retries, lose those spans
            for exporter in self.exporters:
                exporter.shutdown()
            closing.join(CLOSE_TIMEOUT_S)


def provider(service_name: str, *processors: SpanProcessor) -> TracerProvider:
    """A tracer provider of this process (never the global one) for ``service_name``."""
    made = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    for processor in processors:
        made.add_span_processor(processor)
    return made


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr)  # standard output stays the command's (opsgate decide)
    return OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, read by the SDK


def tracer(exporters: str, service_name: str) -> Tracer:
    """The tracer for the settings' ``traces_exporter`` ("none": the no-op tracer, nothing is built)."""
    names = [name for name in exporters.split(",") if name and name != "none"]
    if not names:
        return NO_TRACER
    made = [_exporter(name) for name in names]
    processors = [BatchSpanProcessor(exporter) for exporter in made]  # OTEL_BSP_* read by the SDK
    return OpenTelemetryTracer(provider(service_name, *processors), made)

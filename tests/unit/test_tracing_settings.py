"""Tracing's settings from the standard OTEL_* variables (off unless they configure it), the no-op tracer
when off, and a failed decide call traced with its error and the stages it reached."""

from __future__ import annotations

import pytest

from service.adapters.tracing import OpenTelemetryTracer, tracer
from service.domain.ruleset import Ruleset
from service.errors import InvalidSettings
from service.ports.tracing import NO_TRACER, DecisionTrace, TraceParent
from service.settings import Settings, from_env
from service.usecases.timing import Timer, traced


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({}, "none"),
        ({"OTEL_SERVICE_NAME": "checkout"}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, "otlp,console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "none"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, "none"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_configure_it(environ: dict[str, str], exporter: str) -> None:
    assert from_env(environ).traces_exporter == exporter


def test_the_service_name_defaults_to_opsgate_and_follows_otel_service_name() -> None:
    assert from_env({}).otel_service_name == "opsgate"
    assert from_env({"OTEL_SERVICE_NAME": "checkout"}).otel_service_name == "checkout"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin' is invalid: 'zipkin' is not one of otlp"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTLP protocol 'grpc' is not served: opsgate exports OTLP as http/protobuf",
        ),
    ],
)
def test_an_exporter_or_protocol_opsgate_cannot_run_stops_the_start(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        from_env(environ)


def test_tracing_off_is_the_no_op_tracer_and_on_is_opentelemetry() -> None:
    assert tracer("none", "opsgate") is NO_TRACER and not NO_TRACER.enabled
    made = tracer("console", "opsgate")
    try:
        assert isinstance(made, OpenTelemetryTracer) and made.enabled
    finally:
        made.close()


class Recorder:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.traces: list[DecisionTrace] = []

    def record(self, trace: DecisionTrace) -> None:
        self.traces.append(trace)

    def close(self) -> None:
        pass


class LogDown(Exception):
    pass


def test_a_call_that_fails_is_traced_with_its_error_and_the_stages_it_reached(ops: Ruleset) -> None:
    recorder, timer = Recorder(), Timer(None)
    with pytest.raises(LogDown), traced(recorder, ops, timer, TraceParent("00-ab-cd-01")):
        timer.lap("decode")
        timer.lap("context", keep=False)
        raise LogDown("the decision log is unavailable")
    [trace] = recorder.traces
    assert (trace.name, trace.error) == ("opsgate.decide", "LogDown: the decision log is unavailable")
    assert [stage.name for stage in trace.stages] == ["decode", "context"]
    assert trace.parent == TraceParent("00-ab-cd-01")
    assert list(timer.laps) == ["decode", "total"]  # the context is a stage of the trace, not a lap of the record


def test_no_trace_is_recorded_when_the_tracer_is_off(ops: Ruleset) -> None:
    recorder, timer = Recorder(enabled=False), Timer(None)
    with traced(recorder, ops, timer, None) as answers:
        timer.lap("decode")
        answers.add("0190a6c8-0000-7000-8000-000000000000", "OPS.DISPATCH", "APPROVED")
    assert recorder.traces == [] and Settings().traces_exporter == "none"

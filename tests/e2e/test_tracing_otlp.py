"""A real ``opsgate serve`` exports its decisions' traces over OTLP/HTTP, as the standard OTEL_* variables
configure it, to an OTLP receiver of the test's own on loopback (POST /v1/traces, protobuf bodies
decoded with opentelemetry-proto): each decision one span with its five stages as children,
continuing the caller's ``traceparent``; with ``--workers 2`` each worker exports its own."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import EXAMPLE_FACTS, REGO_DIR, RULES_DIR
from tests.e2e.server import Server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
STAGES = ["decode", "context", "rules", "guardrails", "log"]


class Receiver:
    """An OTLP/HTTP trace receiver on a free loopback port: every span it is sent, with its service name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        self.paths: list[str] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(self.path, self.headers.get("Content-Type", ""), request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, content_type: str, request: ExportTraceServiceRequest) -> None:
        with self.changed:
            self.paths.append(f"{path} {content_type}")
            for resource_spans in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope_spans.spans)
            self.changed.notify_all()

    def decision(self, decision_id: str, within: float = 30.0) -> tuple[str, Span, list[Span]]:
        """The span of ``decision_id`` (its service name, the span, its children in order), once all
        five children have arrived; fails after ``within`` seconds."""
        deadline = time.monotonic() + within
        with self.changed:
            while True:
                found = self._decision(decision_id)
                if found is not None and len(found[2]) == len(STAGES):
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"no trace of {decision_id} with five children in {within} s: {found}"
                self.changed.wait(left)

    def _decision(self, decision_id: str) -> tuple[str, Span, list[Span]] | None:
        for service, span in self.spans:
            if _attributes(span).get("opsgate.decision.id") == decision_id:
                children = [child for _, child in self.spans if child.parent_span_id == span.span_id]
                return service, span, sorted(children, key=lambda child: child.start_time_unix_nano)
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(span: Span) -> dict[str, Any]:
    return {attribute.key: _value(attribute.value) for attribute in span.attributes}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def otel(receiver: Receiver) -> dict[str, str]:
    """The standard variables that turn traces on: the receiver's endpoint, a service name, and a short
    batch delay (the spans still leave in batches, from the SDK's own exporter thread)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "opsgate-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


def test_a_decision_is_exported_over_otlp_http_as_a_span_with_five_children_under_the_callers_trace(
    tmp_path: Path, opa_bin: str, receiver: Receiver
) -> None:
    server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, **otel(receiver))
    try:
        headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "tracestate": "vendor=checkout"}
        answer = server.client.post("/decide/ops", json=EXAMPLE_FACTS, headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()["result"]
        service, span, children = receiver.decision(result["decision_id"])
    finally:
        server.stop()
    assert service == "opsgate-e2e"
    assert span.name == "opsgate.decide" and span.kind == Span.SPAN_KIND_SERVER
    assert (span.trace_id.hex(), span.parent_span_id.hex(), span.trace_state) == (
        TRACE_ID,
        CALLER_SPAN,
        "vendor=checkout",
    )
    assert [child.name for child in children] == STAGES
    assert {child.trace_id.hex() for child in children} == {TRACE_ID}
    assert _attributes(span) == {
        "opsgate.ruleset": "ops",
        "opsgate.ruleset.version": result["explanation"]["ruleset"]["version"],
        "opsgate.decision.id": result["decision_id"],
        "opsgate.decision.type": "OPS.DISPATCH",
        "opsgate.decision.status": "APPROVED",
    }
    assert span.start_time_unix_nano <= children[0].start_time_unix_nano
    assert children[-1].end_time_unix_nano <= span.end_time_unix_nano
    assert receiver.paths[0] == "/v1/traces application/x-protobuf"


def test_with_two_workers_each_exports_its_decisions_traces(tmp_path: Path, opa_bin: str, receiver: Receiver) -> None:
    server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node",
                    **otel(receiver))  # fmt: skip
    try:
        decided: list[str] = []
        deadline = time.monotonic() + 60
        while len(_chains(server)) < 2:  # until both workers have decided (any may accept a new connection)
            assert time.monotonic() < deadline, f"one worker decided all of {len(decided)} decisions"
            with httpx.Client(base_url=server.url, timeout=30) as fresh:
                answer = fresh.post("/decide", json=EXAMPLE_FACTS)
            assert answer.status_code == 200, answer.text
            decided.append(answer.json()["result"]["decision_id"])
        for decision_id in decided:
            _, span, children = receiver.decision(decision_id)
            assert span.parent_span_id == b"" and [child.name for child in children] == STAGES
    finally:
        server.stop()


def _chains(server: Server) -> set[str]:
    """The writers (workers) whose chain holds a decision."""
    return {head["writer"] for head in server.client.get("/log/head").json()["chains"] if head["seq"] > 0}


def test_a_collector_that_is_down_loses_spans_never_decisions_and_never_holds_up_a_stop(
    tmp_path: Path, opa_bin: str
) -> None:
    with socket.socket() as closed:  # a loopback port that refuses connections: bound, never listening
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                        OTEL_BSP_SCHEDULE_DELAY="50")  # fmt: skip
        try:
            answers = [server.client.post("/decide/ops", json=EXAMPLE_FACTS) for _ in range(3)]
            assert [a.status_code for a in answers] == [200] * 3
            assert {a.json()["result"]["execution"]["status"] for a in answers} == {"APPROVED"}
            started = time.monotonic()
            server.proc.terminate()
            code = server.proc.wait(timeout=30)
            stopped_in = time.monotonic() - started
        finally:
            server.stop()
    # the exporter would retry for 10 s (OTEL_EXPORTER_OTLP_TIMEOUT); closing gives it 2 s, then stops it.
    # uvicorn ends a graceful stop by raising the signal again: the exit is SIGTERM's, after the shutdown
    log = server.log_text()
    assert code in (0, -signal.SIGTERM) and stopped_in < 8, f"exit {code} after {stopped_in:.1f} s:\n{log}"
    assert "Application shutdown complete" in log and "/v1/traces" in log

"""Traces of decisions through what bootstrap.start builds (the real engine, OPA child and log), exported
to the OpenTelemetry SDK's in-memory exporter: one span per decide call with its five stages as
children, the decision's attributes, and the caller's traceparent continued."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service import bootstrap
from service.adapters.tracing import OpenTelemetryTracer, provider
from service.ports.tracing import TraceParent, Tracer
from service.settings import Settings
from service.usecases.answer import DecisionResponse
from tests.conftest import EXAMPLE_FACTS, OPA_TIMEOUT_MS, copy_ops_only

CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FIRST_ATTEMPT = {**EXAMPLE_FACTS, "process": {**EXAMPLE_FACTS["process"], "attempts": 0}}
THIRD_ATTEMPT = {**EXAMPLE_FACTS, "process": {**EXAMPLE_FACTS["process"], "attempts": 3}}
STAGES = ["decode", "context", "rules", "guardrails", "log"]


def decide(
    tmp_path: Path, opa_bin: str, items: list[dict[str, Any]], parent: TraceParent | None, *, batch: bool = False
) -> tuple[list[DecisionResponse], Sequence[ReadableSpan]]:
    exporter = InMemorySpanExporter()

    def in_memory(_settings: Settings) -> Tracer:
        return OpenTelemetryTracer(provider("opsgate-test", SimpleSpanProcessor(exporter)))

    rules, rego = copy_ops_only(tmp_path)
    settings = Settings(
        db=str(tmp_path / "decisions.db"),
        rules_dir=rules,
        rego_dir=rego,
        opa_bin=opa_bin,
        opa_timeout_ms=OPA_TIMEOUT_MS,
    )

    async def run() -> list[DecisionResponse]:
        running = await bootstrap.start(settings, tracer_factory=in_memory)
        try:
            service = running.runtime.service
            ruleset = service.catalog.get("ops")
            decoded = [ruleset.decoder.decode_json(json.dumps(facts).encode()) for facts in items]
            if batch:
                return await service.decide_batch(ruleset, decoded, "trace-test", parent=parent)
            return [await service.decide_facts(ruleset, decoded[0], "trace-test", parent=parent)]
        finally:
            await running.close()

    responses = asyncio.run(run())
    return responses, exporter.get_finished_spans()


def parts(spans: Sequence[ReadableSpan], name: str) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The one span called ``name`` and its children, in the order they started."""
    [root] = [span for span in spans if span.name == name]
    assert root.context is not None
    children = [span for span in spans if span.parent is not None and span.parent.span_id == root.context.span_id]
    return root, sorted(children, key=lambda span: span.start_time or 0)


def test_a_decision_is_one_span_with_its_five_stages_continuing_the_callers_trace(tmp_path: Path, opa_bin: str) -> None:
    [response], spans = decide(tmp_path, opa_bin, [FIRST_ATTEMPT], TraceParent(TRACEPARENT))
    assert len(spans) == 6
    root, children = parts(spans, "opsgate.decide")
    assert [child.name for child in children] == STAGES
    assert root.context is not None and root.parent is not None
    assert (root.context.trace_id, root.parent.span_id, root.parent.is_remote) == (CALLER_TRACE, CALLER_SPAN, True)
    assert {child.context.trace_id for child in children if child.context} == {CALLER_TRACE}
    assert root.kind == SpanKind.SERVER and root.status.status_code == StatusCode.UNSET
    assert root.resource.attributes["service.name"] == "opsgate-test"
    result = response.result
    assert dict(root.attributes or {}) == {
        "opsgate.ruleset": "ops",
        "opsgate.ruleset.version": result.explanation.ruleset.version,
        "opsgate.decision.id": result.decision_id,
        "opsgate.decision.type": "OPS.DISPATCH",
        "opsgate.decision.status": "APPROVED",
    }
    # the stages follow one another inside the decision's span
    assert root.start_time is not None and root.end_time is not None
    bounds = [(child.start_time or 0, child.end_time or 0) for child in children]
    assert root.start_time <= bounds[0][0] and bounds[-1][1] <= root.end_time
    assert all(end <= start for (_, end), (start, _) in zip(bounds, bounds[1:], strict=False))
    assert all(start <= end for start, end in bounds)


def test_a_decision_without_a_traceparent_starts_a_trace_of_its_own(tmp_path: Path, opa_bin: str) -> None:
    [response], spans = decide(tmp_path, opa_bin, [THIRD_ATTEMPT], None)
    root, children = parts(spans, "opsgate.decide")
    assert root.parent is None and [child.name for child in children] == STAGES
    assert root.context is not None and root.context.trace_id != CALLER_TRACE
    assert root.attributes is not None
    assert (root.attributes["opsgate.decision.type"], root.attributes["opsgate.decision.status"]) == (
        "OPS.ESCALATE",
        "ESCALATED",
    )
    assert root.attributes["opsgate.decision.id"] == response.result.decision_id


def test_a_malformed_traceparent_starts_a_new_trace_and_the_decision_is_still_traced(
    tmp_path: Path, opa_bin: str
) -> None:
    _, spans = decide(tmp_path, opa_bin, [FIRST_ATTEMPT], TraceParent("00-not-a-trace-01"))
    root, children = parts(spans, "opsgate.decide")
    assert root.parent is None and [child.name for child in children] == STAGES


def test_a_batch_is_one_span_with_the_five_stages_and_its_items_answers_in_order(tmp_path: Path, opa_bin: str) -> None:
    responses, spans = decide(tmp_path, opa_bin, [FIRST_ATTEMPT, THIRD_ATTEMPT], TraceParent(TRACEPARENT), batch=True)
    assert len(spans) == 6
    root, children = parts(spans, "opsgate.decide_batch")
    assert [child.name for child in children] == STAGES
    assert root.parent is not None and root.parent.span_id == CALLER_SPAN
    attributes = dict(root.attributes or {})
    assert attributes["opsgate.batch.items"] == 2
    assert list(attributes["opsgate.decision.ids"]) == [r.result.decision_id for r in responses]  # type: ignore[arg-type]
    assert list(attributes["opsgate.decision.types"]) == ["OPS.DISPATCH", "OPS.ESCALATE"]  # type: ignore[arg-type]
    assert list(attributes["opsgate.decision.statuses"]) == ["APPROVED", "ESCALATED"]  # type: ignore[arg-type]

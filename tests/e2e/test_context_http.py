"""Context providers end to end: a real ``opsgate serve`` whose ops ruleset fetches ``history`` from a
context source of this test's own on loopback (a real HTTP server counting its hits)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_ops_only
from tests.e2e.server import Server

# generous for a loaded machine: the slow source blocks until the test has its answer anyway
TIMEOUT_MS = 1000


class Source:
    """The context source: ``/history/<id>`` answers ``answers[id]``; ``slow`` waits for ``release``."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()
        self.answers: dict[str, Any] = {
            "worker-fetched": {"failures": 0, "latency": 250},
            "worker-cached": {"failures": 0, "latency": 300},
            "worker-broken": {"failures": 4, "latency": 900},
            "worker-bad-data": {"failures": "many"},
            "worker-sent": {"failures": 9, "latency": 9000},
        }
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                name = self.path.removeprefix("/history/")
                source.hits[name] += 1
                if name == "worker-slow":
                    source.release.wait(30)  # until the test has its answer
                body = json.dumps(source.answers.get(name, {"failures": 0, "latency": 1})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the slow answer, long after
                    self.wfile.write(body)  # opsgate gave up on it

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def source() -> Iterator[Source]:
    running = Source()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("context")


@pytest.fixture(scope="module")
def served(root: Path, opa_bin: str, source: Source) -> Iterator[Server]:
    rules, rego = copy_ops_only(root)
    provider = f'{{http: "{source.url}/history/{{resource.id}}", timeout_ms: {TIMEOUT_MS}, cache_s: 60}}'
    block = f"\ncontext:\n  history: {provider}\n"
    with (rules / "ops.yaml").open("a") as ops:
        ops.write(block)
    running = Server(root, rules, rego, opa_bin, OPSGATE_CONTEXT_BUDGET_MS=str(4 * TIMEOUT_MS))
    yield running
    running.stop()


def facts(resource: str, **extra: Any) -> dict[str, Any]:
    return {
        "org_id": 7,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 0},
        "resource": {"id": resource, "capacity": 100, "status": "available"},
        **extra,
    }


def decided(served: Server, body: dict[str, Any]) -> dict[str, Any]:
    answer = served.decide(body, "/decide/ops")
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]  # type: ignore[no-any-return]


def test_a_decision_without_history_fetches_it_and_shows_its_source_and_age(served: Server, source: Source) -> None:
    result = decided(served, facts("worker-fetched"))
    assert result["explanation"]["error"] is None
    assert result["context"]["history"] == {"failures": 0, "latency": 250}
    assert result["decision"]["decision_type"] == "OPS.DISPATCH"
    assert result["execution"]["status"] == "APPROVED"
    shown = result["explanation"]["context"]["history"]
    assert shown["source"] == f"{source.url}/history/worker-fetched"
    assert shown["age_ms"] == 0
    assert shown["fetched_at"].endswith("+00:00")
    logged = served.client.get(f"/decisions/{result['decision_id']}").json()["record"]
    assert logged["context"] == {"history": shown}
    assert logged["facts"]["history"] == {"failures": 0, "latency": 250}
    page = served.client.get(f"/ui/decisions/{result['decision_id']}")
    assert f"{source.url}/history/worker-fetched" in page.text


def test_the_cache_serves_repeats_without_asking_the_source_again(served: Server, source: Source) -> None:
    first = decided(served, facts("worker-cached"))
    second = decided(served, facts("worker-cached"))
    assert source.hits["worker-cached"] == 1
    assert second["context"]["history"] == {"failures": 0, "latency": 300}
    assert (
        second["explanation"]["context"]["history"]["fetched_at"]
        == first["explanation"]["context"]["history"]["fetched_at"]
    )
    assert second["explanation"]["context"]["history"]["age_ms"] > 0


def test_facts_sent_win_over_the_provider(served: Server, source: Source) -> None:
    sent = {"failures": 0, "latency": 40}
    result = decided(served, facts("worker-sent", history=sent))
    assert result["context"]["history"] == sent
    assert "context" not in result["explanation"]
    assert source.hits["worker-sent"] == 0


def test_a_provider_past_its_timeout_escalates_with_the_reason(served: Server, source: Source) -> None:
    try:
        result = decided(served, facts("worker-slow"))
    finally:
        source.release.set()  # the source answers only once the decision is back
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert result["execution"]["status"] == "ESCALATED"
    reason = result["decision"]["proposed_actions"][0]["reason"]
    url = f"{source.url}/history/worker-slow"
    assert reason == f"the rules could not decide: missing context: history from {url}: timed out after {TIMEOUT_MS} ms"
    assert result["explanation"]["fired_rules"] == []
    assert result["context"]["history"] is None
    replayed = served.client.post(
        f"/decisions/{result['decision_id']}/replay", headers={"Content-Type": "application/json"}
    )
    assert replayed.status_code == 200, replayed.text
    after = replayed.json()["after"]  # nothing fetches in a replay: the missing group still escalates
    assert after["decision.decision_type"] == "OPS.ESCALATE"
    assert (after["execution.status"], after["fired_rules"]) == ("ESCALATED", [])


def test_data_the_schema_refuses_escalates_with_the_field(served: Server, source: Source) -> None:
    result = decided(served, facts("worker-bad-data"))
    assert result["execution"]["status"] == "ESCALATED"
    url = f"{source.url}/history/worker-bad-data"
    reason = result["explanation"]["error"]
    assert reason == (
        f"missing context: history from {url}: invalid data: invalid facts: history.failures: Expected `int`, got `str`"
    )


def test_a_batch_fills_each_item_and_fails_closed_per_item(served: Server, source: Source) -> None:
    sent = facts("worker-batch-b", history={"failures": 0, "latency": 1})
    body = {"items": [facts("worker-batch-a"), facts("worker-bad-data"), sent]}
    answer = served.client.post("/decide/ops/batch", json=body)
    assert answer.status_code == 200, answer.text
    results = [item["result"] for item in answer.json()["results"]]
    assert [r["execution"]["status"] for r in results] == ["APPROVED", "ESCALATED", "APPROVED"]
    assert results[0]["explanation"]["context"]["history"]["source"] == f"{source.url}/history/worker-batch-a"
    assert source.hits["worker-batch-b"] == 0


def test_the_schema_lets_a_request_leave_out_a_provided_group_only(served: Server) -> None:
    body = facts("worker-fetched")
    del body["resource"]
    answer = served.decide(body, "/decide/ops")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == [{"path": "resource", "reason": "required field is missing"}]


def test_a_reload_with_a_bad_block_is_refused_at_its_line_and_the_provider_keeps_serving(
    served: Server, source: Source, root: Path
) -> None:
    ops = root / "rules" / "ops.yaml"
    good = ops.read_text()
    ops.write_text(good.replace("timeout_ms: ", "timeout_ms: -"))
    try:
        refused = served.client.post("/admin/reload", headers={"Content-Type": "application/json"})
    finally:
        ops.write_text(good)
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["error"]["details"]
    line = good.splitlines().index("context:") + 2
    assert (problem["file"], problem["line"], problem["path"]) == ("rules/ops.yaml", line, "context.history.timeout_ms")
    assert problem["reason"] == "timeout_ms is the milliseconds the provider may take: a number from 1 to 60000"
    result = decided(served, facts("worker-after-reload"))
    assert result["explanation"]["context"]["history"]["source"] == f"{source.url}/history/worker-after-reload"


AGENT = {"agent": "ops-copilot", "model": "m-1", "version": "2026.12"}
DISPATCH = {"type": "TRIGGER_PROCESS", "resource_id": "worker-evaluated", "autonomy": "L2"}


def evaluated(served: Server, resource: str) -> dict[str, Any]:
    proposal = {"decision_type": "OPS.DISPATCH", "confidence": 0.9, "actions": [{**DISPATCH, "resource_id": resource}]}
    body = {"ruleset": "ops", "facts": facts(resource), "proposal": proposal, "proposer": AGENT}
    answer = served.client.post("/v1/policy/evaluate", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_proposal_made_elsewhere_gets_its_missing_group_from_the_provider(served: Server, source: Source) -> None:
    source.answers["worker-evaluated"] = {"failures": 0, "latency": 120}
    answer = evaluated(served, "worker-evaluated")
    result = answer["result"]
    assert result["execution"]["status"] == "APPROVED"
    assert result["context"]["history"] == {"failures": 0, "latency": 120}
    assert result["explanation"]["context"]["history"]["source"] == f"{source.url}/history/worker-evaluated"
    assert answer["rules_would"]["decision_type"] == "OPS.DISPATCH"
    logged = served.client.get(f"/decisions/{result['decision_id']}").json()["record"]
    assert logged["context"]["history"]["source"] == f"{source.url}/history/worker-evaluated"


def test_a_proposal_made_elsewhere_is_never_approved_on_context_that_could_not_be_had(
    served: Server, source: Source
) -> None:
    answer = evaluated(served, "worker-bad-data")
    result = answer["result"]
    assert result["execution"]["status"] == "ESCALATED"
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert result["explanation"]["error"].startswith(
        f"missing context: history from {source.url}/history/worker-bad-data"
    )
    assert result["explanation"]["guardrails"]["available"] is False
    assert answer["rules_would"]["decision_type"] is None

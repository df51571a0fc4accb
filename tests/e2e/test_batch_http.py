"""POST /decide/batch and micro-batched guardrail queries, against a real server, OPA and SQLite log."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from service.adapters.store import verify_log
from tests.conftest import signal_and_wait
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

APPROVED = ops_facts()  # DISPATCH 0.85, allowed
RETRY = ops_facts(failures=1)  # RETRY 0.7, allowed
LOW_CONFIDENCE = ops_facts(attempts=2, failures=2, status="offline")  # REASSIGN 0.5, denied by min_confidence
MAX_ATTEMPTS = ops_facts(attempts=3)  # the rules escalate
BAD = {**ops_facts(), "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": -1}}


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """What must not differ between a batch item and the same facts decided alone."""
    guardrails = result["explanation"]["guardrails"]
    return {
        "decision": result["decision"],
        "execution": result["execution"],
        "fired": [rule["id"] for rule in result["explanation"]["fired_rules"]],
        "guardrails": {k: guardrails[k] for k in ("available", "allow", "violations", "approvals")},
    }


def batch(server: Server, items: list[Any], path: str = "/decide/batch") -> httpx.Response:
    return server.client.post(path, json={"items": items})


def test_a_batch_answers_in_order_with_the_same_verdicts_as_single_calls(server: Server) -> None:
    items = [APPROVED, LOW_CONFIDENCE, MAX_ATTEMPTS, RETRY, LOW_CONFIDENCE, APPROVED]
    response = batch(server, items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["count"], body["decided"], body["errors"]) == ("success", 6, 6, 0)
    results = [entry["result"] for entry in body["results"]]
    assert [r["decision"]["decision_type"] for r in results] == [
        "OPS.DISPATCH", "OPS.ESCALATE", "OPS.ESCALATE", "OPS.RETRY", "OPS.ESCALATE", "OPS.DISPATCH",
    ]  # fmt: skip
    assert [r["execution"]["status"] for r in results] == [
        "APPROVED", "ESCALATED", "ESCALATED", "APPROVED", "ESCALATED", "APPROVED",
    ]  # fmt: skip
    denied = results[1]["explanation"]["guardrails"]["violations"]
    assert [(v["policy"], v["message"]) for v in denied] == [
        ("ops.min_confidence", "confidence 0.5 is below the minimum 0.6")
    ]
    assert denied[0]["location"] == "rego/guardrails/ops/min_confidence/min_confidence.rego:25"
    for facts, result in zip(items, results, strict=True):
        assert verdict(result) == verdict(result_of(server, facts))
    assert len({r["decision_id"] for r in results}) == 6


def test_a_bad_item_gets_the_single_decide_error_and_the_others_still_decide(server: Server) -> None:
    body = batch(server, [APPROVED, BAD, {"org_id": 0}, LOW_CONFIDENCE]).json()
    assert (body["count"], body["decided"], body["errors"]) == (4, 2, 2)
    first, bad, missing, last = body["results"]
    assert first["result"]["execution"]["status"] == "APPROVED"
    assert last["result"]["execution"]["status"] == "ESCALATED"
    assert bad == {
        "status": "error",
        "error": {
            "code": "invalid_facts",
            "message": "invalid facts: process.attempts: Expected `int` >= 0",
            "details": [{"path": "process.attempts", "reason": "Expected `int` >= 0"}],
        },
    }
    assert bad == server.decide(BAD).json()  # exactly what /decide says about the same facts
    assert missing["error"]["code"] == "invalid_facts"
    assert missing["error"]["details"][0]["reason"] == "required field is missing"


def test_every_batch_item_is_logged_like_a_single_decision_and_the_log_verifies(server: Server) -> None:
    body = batch(server, [APPROVED, LOW_CONFIDENCE, BAD, RETRY]).json()
    decided = [entry["result"] for entry in body["results"] if entry["status"] == "success"]
    assert len(decided) == 3
    for result in decided:
        shown = server.client.get(f"/decisions/{result['decision_id']}")
        assert shown.status_code == 200
        record = shown.json()["record"]
        assert record["kind"] == "decision" and record["caller"] == "127.0.0.1"
        assert record["ruleset"]["name"] == "ops" and record["ruleset"]["file"] == "rules/ops.yaml"
        assert record["decision"] == result["decision"] and record["execution"] == result["execution"]
        assert record["facts"] == result["context"]
        assert set(record["latency_ms"]) == {"decode", "rules", "guardrails", "total"}
        assert shown.json()["log_id"] == result["decision_log_id"]
    log_ids = [r["decision_log_id"] for r in decided]
    assert log_ids == sorted(log_ids) and len(set(log_ids)) == 3
    report = verify_log(server.db)
    assert report.intact, str(report)


def test_the_named_ruleset_route_and_the_limits(server: Server) -> None:
    named = batch(server, [RETRY], "/decide/ops/batch").json()
    assert named["results"][0]["result"]["decision"]["decision_type"] == "OPS.RETRY"
    too_many = batch(server, [APPROVED] * 1001)
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "payload_too_large"
    assert too_many.json()["error"]["details"] == [{"path": "items", "reason": "1001 items; at most 1000 per batch"}]
    empty = batch(server, [])
    assert empty.status_code == 422 and empty.json()["error"]["details"] == [{"path": "items", "reason": "empty"}]
    not_a_batch = server.client.post("/decide/batch", json=APPROVED)
    assert not_a_batch.status_code == 422 and not_a_batch.json()["error"]["code"] == "invalid_request"
    assert batch(server, [APPROVED], "/decide/nope/batch").status_code == 404


def test_a_full_batch_of_1000_decides_every_item(server: Server) -> None:
    body = batch(server, [LOW_CONFIDENCE, APPROVED] * 500).json()
    assert body["decided"] == 1000
    statuses = [entry["result"]["execution"]["status"] for entry in body["results"]]
    assert statuses == ["ESCALATED", "APPROVED"] * 500
    assert all(entry["result"]["explanation"]["guardrails"]["available"] for entry in body["results"])


def test_with_opa_killed_every_batch_item_escalates(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs, OPSGATE_OPA_RESTART_BACKOFF_S="5.0")
    signal_and_wait(server.client.get("/ready").json()["opa"]["pid"], signal.SIGKILL)
    body = batch(server, [APPROVED, RETRY, LOW_CONFIDENCE, BAD]).json()
    assert (body["decided"], body["errors"]) == (3, 1)
    for entry in body["results"][:3]:
        result = entry["result"]
        assert result["decision"]["decision_type"] == "OPS.ESCALATE"
        assert result["execution"]["status"] == "ESCALATED"
        assert result["explanation"]["guardrails"]["available"] is False
        assert result["explanation"]["guardrails"]["allow"] is False
        assert server.client.get(f"/decisions/{result['decision_id']}").status_code == 200
    assert [e["result"]["explanation"]["proposal"]["decision_type"] for e in body["results"][:3]] == [
        "OPS.DISPATCH", "OPS.RETRY", "OPS.REASSIGN",
    ]  # fmt: skip


def test_concurrent_single_decisions_share_opa_queries_and_answer_as_alone(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs, OPSGATE_OPA_BATCH_WINDOW_MS="20")
    mix = [APPROVED, RETRY, LOW_CONFIDENCE, MAX_ATTEMPTS, ops_facts(failures=1, attempts=2)]
    alone = [verdict(result_of(server, facts)) for facts in mix]
    before = server.client.get("/ready").json()["opa"]["micro_batching"]
    facts_of = [mix[i % len(mix)] for i in range(50)]
    together = threading.Barrier(25, timeout=30)  # 25 threads, 50 requests: two waves of 25 at once

    def decide(facts: dict[str, Any]) -> dict[str, Any]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            together.wait()
            response = client.post("/decide", json=facts)
            assert response.status_code == 200, response.text
            return response.json()["result"]  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(decide, facts_of))
    assert [verdict(r) for r in results] == [alone[i % len(mix)] for i in range(50)]
    after = server.client.get("/ready").json()["opa"]["micro_batching"]
    assert after["window_ms"] == 20
    items = after["items"] - before["items"]
    queries = after["queries"] - before["queries"]
    assert items == 50
    assert queries < items, f"{queries} OPA queries for {items} decisions: nothing was batched"

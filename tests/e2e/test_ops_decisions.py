"""Every row of the Operations table, the REASSIGN target choice and the priority flag, over HTTP."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.conftest import RULES_DIR
from tests.e2e.server import Server


def ops_facts(
    attempts: int = 1,
    failures: int = 0,
    status: str = "available",
    capacity: int = 100,
    latency: float = 500,
    sla: int = 3600,
    candidates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "org_id": 0,
        "process": {"type": "ORDER_PROCESSING", "sla": sla, "attempts": attempts},
        "resource": {"id": "worker-001", "capacity": capacity, "status": status},
        "history": {"failures": failures, "latency": latency},
    }
    if candidates is not None:
        facts["candidates"] = candidates
    return facts


def result_of(server: Server, facts: dict[str, Any], path: str = "/decide") -> dict[str, Any]:
    response = server.decide(facts, path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["agent"] == "operations-agent"
    return body["result"]  # type: ignore[no-any-return]


def test_readme_example_dispatches_to_worker_001(server: Server) -> None:
    result = result_of(server, ops_facts())
    assert result["decision"] == {
        "decision_type": "OPS.DISPATCH",
        "confidence": 0.85,
        "priority": "NORMAL",
        "proposed_actions": [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}],
    }
    assert result["execution"] == {
        "status": "APPROVED",
        "actions": [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}],
    }
    assert result["explanation"]["fired_rules"] == [
        {
            "id": "dispatch",
            "title": "Dispatch to the resource",
            "file": "rules/ops.yaml",
            "line": 123,
            "priority": 10,
            "won": True,
        }
    ]
    assert result["explanation"]["guardrails"]["available"] is True
    assert result["explanation"]["guardrails"]["allow"] is True
    assert result["explanation"]["summary"] == (
        "Rule dispatch (rules/ops.yaml:123) proposed OPS.DISPATCH with confidence 0.85; guardrails allowed it."
    )
    assert result["context"]["history"] == {"failures": 0, "latency": 500}


ROWS = [
    pytest.param(
        ops_facts(attempts=3),
        "OPS.ESCALATE", 0.95, "ESCALATED",
        {"type": "OPEN_INCIDENT", "autonomy": "L0", "resource_id": "worker-001", "reason": "attempts 3 reached max_attempts 3"},
        ["escalate-attempts", "dispatch"],
        id="1-escalate-attempts",
    ),
    pytest.param(
        ops_facts(attempts=0, failures=4),
        "OPS.ESCALATE", 0.95, "ESCALATED",
        {"type": "OPEN_INCIDENT", "autonomy": "L0", "resource_id": "worker-001", "reason": "failures 4 reached max_failures 3"},
        ["escalate-failures", "retry-after-failure", "dispatch"],
        id="2-escalate-failures",
    ),
    pytest.param(
        ops_facts(attempts=1, failures=1, status="overloaded", candidates=[{"id": "w-9", "capacity": 5, "status": "available"}]),
        "OPS.REASSIGN", 0.65, "APPROVED",
        {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "w-9"},
        ["reassign-unavailable", "retry-after-failure", "dispatch"],
        id="3-reassign-unavailable",
    ),
    pytest.param(
        ops_facts(attempts=2, failures=1),
        "OPS.RETRY", 0.65, "APPROVED",
        {"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 120},
        ["retry-after-failure", "dispatch"],
        id="4-retry-after-failure",
    ),
    pytest.param(
        ops_facts(attempts=0),
        "OPS.DISPATCH", 0.9, "APPROVED",
        {"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"},
        ["dispatch"],
        id="5-dispatch",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("facts", "decision_type", "confidence", "status", "action", "fired"), ROWS)
def test_each_row_of_the_operations_table(
    server: Server, facts: dict[str, Any], decision_type: str, confidence: float, status: str,
    action: dict[str, Any], fired: list[str],
) -> None:  # fmt: skip
    result = result_of(server, facts)
    assert result["decision"]["decision_type"] == decision_type
    assert result["decision"]["confidence"] == confidence
    assert result["decision"]["proposed_actions"] == [action]
    assert result["execution"]["status"] == status
    fired_rules = result["explanation"]["fired_rules"]
    assert [rule["id"] for rule in fired_rules] == fired
    assert [rule["won"] for rule in fired_rules] == [True] + [False] * (len(fired) - 1)


def test_zero_capacity_on_an_available_resource_reassigns(server: Server) -> None:
    result = result_of(server, ops_facts(capacity=0))
    assert result["decision"]["decision_type"] == "OPS.REASSIGN"
    assert result["decision"]["confidence"] == 0.75
    assert result["decision"]["proposed_actions"][0]["target_id"] is None


def test_reassign_picks_the_available_candidate_with_most_capacity_lowest_id_on_ties(server: Server) -> None:
    candidates = [
        {"id": "c", "capacity": 80, "status": "available"},
        {"id": "worker-001", "capacity": 500, "status": "available"},  # the current resource
        {"id": "d", "capacity": 900, "status": "offline"},
        {"id": "e", "capacity": 0, "status": "available"},
        {"id": "b", "capacity": 80, "status": "available"},
        {"id": "a", "capacity": 50, "status": "available"},
    ]
    result = result_of(server, ops_facts(status="maintenance", candidates=candidates))
    assert result["decision"]["proposed_actions"] == [
        {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "b"}
    ]
    assert result["execution"]["status"] == "APPROVED"


def test_reassign_without_a_usable_candidate_proposes_a_null_target_which_is_allowed(server: Server) -> None:
    candidates = [{"id": "x", "capacity": 10, "status": "offline"}]
    result = result_of(server, ops_facts(status="unavailable", candidates=candidates))
    assert result["decision"]["proposed_actions"][0]["target_id"] is None
    assert result["execution"]["status"] == "APPROVED"


@pytest.mark.parametrize(("latency", "priority"), [(3_600_001, "HIGH"), (3_600_000, "NORMAL"), (0, "NORMAL")])
def test_priority_is_high_only_when_latency_exceeds_the_sla(server: Server, latency: float, priority: str) -> None:
    assert result_of(server, ops_facts(latency=latency, sla=3600))["decision"]["priority"] == priority


def test_decide_ops_and_run_are_the_same_ruleset(server: Server) -> None:
    for path in ("/decide/ops", "/run"):
        result = result_of(server, ops_facts(), path)
        assert result["decision"]["decision_type"] == "OPS.DISPATCH"
        assert result["explanation"]["ruleset"]["name"] == "ops"


def test_each_decision_is_in_the_log_before_the_answer(server: Server) -> None:
    result = result_of(server, ops_facts(failures=1))
    with sqlite3.connect(server.db) as connection:
        row = connection.execute(
            "SELECT id, ruleset, ruleset_version, decision_type, execution_status FROM log_entries "
            "WHERE decision_id = ? AND kind = 'decision'",
            (result["decision_id"],),
        ).fetchone()
    assert row == (
        result["decision_log_id"],
        "ops",
        result["explanation"]["ruleset"]["version"],
        "OPS.RETRY",
        "APPROVED",
    )
    assert result["decision_id"][14] == "7"  # a UUIDv7


def test_health_ready_and_openapi_are_served(server: Server) -> None:
    assert server.client.get("/health").json() == {"status": "ok"}
    ready = server.client.get("/ready").json()
    assert ready["ready"] is True and ready["opa"]["up"] is True
    # every shipped ruleset is served, whatever rules/ holds besides ops
    assert "ops" in ready["rulesets"] and set(ready["rulesets"]) == {p.stem for p in RULES_DIR.glob("*.yaml")}
    schema = server.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/decide" in schema.json()["paths"]


def test_explain_full_says_why_each_other_rule_did_not_fire(server: Server) -> None:
    response = server.client.post("/decide?explain=full", json=ops_facts())
    assert response.status_code == 200
    not_fired = response.json()["result"]["explanation"]["not_fired"]
    assert [entry["reason"] for entry in not_fired] == [
        "escalate-attempts: process.attempts >= params.max_attempts was false "
        "(process.attempts = 1, params.max_attempts = 3)",
        "escalate-failures: history.failures >= params.max_failures was false "
        "(history.failures = 0, params.max_failures = 3)",
        'reassign-unavailable: resource.status != "available" or resource.capacity == 0 was false '
        '(resource.status = "available", resource.capacity = 100)',
        "retry-after-failure: history.failures > 0 was false (history.failures = 0)",
    ]
    assert not_fired[3]["values"] == {"history.failures": 0} and not_fired[3]["line"] == 109


def test_without_explain_full_the_answer_has_no_why_not(server: Server) -> None:
    assert "not_fired" not in result_of(server, ops_facts())["explanation"]
    bad = server.client.post("/decide?explain=yes", json=ops_facts())
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["path"] == "explain"

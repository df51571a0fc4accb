"""An agent proposes, opsgate guards: POST /v1/policy/evaluate against a real `opsgate serve` with the
real OPA (the test plays the agent), and the decision history of decisions made elsewhere
(/v1/policy/decisions), on SQLite and on PostgreSQL, with `opsgate log verify` passing."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import copy_ops_only, verified
from tests.e2e.server import Server

AGENT = {"agent": "ops-copilot", "model": "gpt-x", "version": "2026-11", "details": {"run": "r-17"}}
CALLER = {"X-Opsgate-Caller": "agent-gateway"}


def facts(attempts: int = 1, failures: int = 0) -> dict[str, Any]:
    return {
        "org_id": 7,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": attempts},
        "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
        "history": {"failures": failures, "latency": 500},
    }


def proposal(decision_type: str, confidence: float, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"decision_type": decision_type, "confidence": confidence, "actions": list(actions)}


DISPATCH = {"type": "TRIGGER_PROCESS", "resource_id": "worker-001"}
RETRY = {"type": "RETRY", "resource_id": "worker-001", "backoff_seconds": 240}


def evaluate(server: Server, body: dict[str, Any]) -> httpx.Response:
    return server.client.post("/v1/policy/evaluate", json=body, headers=CALLER)


def guarded(server: Server, the_facts: dict[str, Any], proposed: dict[str, Any]) -> dict[str, Any]:
    response = evaluate(server, {"ruleset": "ops", "facts": the_facts, "proposal": proposed, "proposer": AGENT})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_retry_at_the_attempt_limit_is_denied_by_the_retry_limit_and_escalated(server: Server) -> None:
    answer = guarded(server, facts(attempts=3, failures=1), proposal("OPS.RETRY", 0.8, RETRY))
    result = answer["result"]
    assert result["execution"]["status"] == "ESCALATED"
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert [v["id"] for v in result["explanation"]["guardrails"]["violations"]] == ["OPS-RETRY-LIMIT"]
    (incident,) = result["execution"]["actions"]
    assert incident["type"] == "OPEN_INCIDENT" and incident["reason"] == "denied by ops.retry_limit"
    assert result["explanation"]["proposal"]["decision_type"] == "OPS.RETRY"
    assert result["explanation"]["summary"].startswith(
        "ops-copilot (gpt-x 2026-11) proposed OPS.RETRY with confidence 0.8, but guardrails denied it"
    )
    assert answer["rules_would"] == {
        "decision_type": "OPS.ESCALATE", "confidence": 0.95, "rules": ["escalate-attempts"], "agrees": False,
    }  # fmt: skip


def test_a_dispatch_at_0_9_is_approved_and_logged_with_its_proposer(server: Server) -> None:
    answer = guarded(server, facts(), proposal("OPS.DISPATCH", 0.9, DISPATCH))
    result = answer["result"]
    assert result["execution"]["status"] == "APPROVED"
    assert result["execution"]["actions"] == [{"autonomy": "L2", **DISPATCH}]  # the ruleset's autonomy for its type
    assert result["decision"]["confidence"] == 0.9
    assert answer["proposer"] == AGENT
    assert answer["rules_would"] == {"decision_type": "OPS.DISPATCH", "confidence": 0.85, "rules": ["dispatch"],
                                     "agrees": True}  # fmt: skip
    logged = server.client.get(f"/decisions/{result['decision_id']}").json()
    record = logged["record"]
    assert record["kind"] == "decision" and record["caller"] == "agent-gateway"
    assert record["proposer"] == AGENT
    assert record["rules_would"]["agrees"] is True
    assert record["fired_rules"] == [] and record["proposal"]["rules"] == []
    explained = server.client.get(f"/decisions/{result['decision_id']}/explain").json()["sentences"]
    assert explained[0] == "ops-copilot (gpt-x 2026-11) proposed it; the ruleset's guardrails judged it."
    page = server.client.get(f"/ui/decisions/{result['decision_id']}").text
    shown = re.search(r'id="proposer">(.*?)</dd>', page, re.S)
    assert shown and html.unescape(shown.group(1)) == "ops-copilot (gpt-x 2026-11) · run r-17"


def test_a_proposal_the_rules_disagree_with_shows_what_they_would_propose(server: Server) -> None:
    answer = guarded(server, facts(failures=1), proposal("OPS.DISPATCH", 0.9, DISPATCH))
    assert answer["result"]["execution"]["status"] == "APPROVED"  # the ruleset does not hold disagreements
    assert answer["rules_would"] == {
        "decision_type": "OPS.RETRY", "confidence": 0.7, "rules": ["retry-after-failure"], "agrees": False,
    }  # fmt: skip
    assert answer["result"]["explanation"]["summary"].endswith(
        "The ruleset's own rules would propose OPS.RETRY with confidence 0.7 (retry-after-failure)."
    )


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"proposal": proposal("OPS.DISPATCH", 0.9, {"type": "REBOOT_HOST"})}, "invalid_request",
         "proposal.actions[0].type"),
        ({"proposal": proposal("OPS.DISPATCH", 1.5, DISPATCH)}, "invalid_request", "proposal.confidence"),
        ({"proposal": proposal("OPS.DISPATCH", -0.1, DISPATCH)}, "invalid_request", "proposal.confidence"),
        ({"proposal": proposal("OPS.REBOOT", 0.9, DISPATCH)}, "invalid_request", "proposal.decision_type"),
        ({"facts": facts(attempts=-1)}, "invalid_facts", "facts.process.attempts"),
        ({"facts": {**facts(), "history": {"failures": 0}}}, "invalid_facts", "facts.history.latency"),
        ({"proposer": {"model": "gpt-x"}}, "invalid_request", "proposer.agent"),
    ],
)  # fmt: skip
def test_a_bad_proposal_is_422_naming_the_field(server: Server, change: dict[str, Any], code: str, path: str) -> None:
    body = {"ruleset": "ops", "facts": facts(), "proposal": proposal("OPS.DISPATCH", 0.9, DISPATCH),
            "proposer": AGENT, **change}  # fmt: skip
    before = server.client.get("/decisions", params={"caller": "agent-gateway", "limit": 500}).json()["items"]
    response = evaluate(server, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"][0]["path"] == path
    after = server.client.get("/decisions", params={"caller": "agent-gateway", "limit": 500}).json()["items"]
    assert len(after) == len(before)  # nothing logged


def test_an_unknown_ruleset_is_404(server: Server) -> None:
    body = {"ruleset": "nope", "facts": {}, "proposal": proposal("X", 0.5), "proposer": AGENT}
    response = evaluate(server, body)
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_ruleset"


def test_a_ruleset_that_requires_approval_on_disagreement_holds_the_proposal_for_a_person(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    rules, rego = copy_ops_only(tmp_path / "dirs")
    ruleset = rules / "ops.yaml"
    ruleset.write_text(ruleset.read_text().replace("params:\n", "params:\n  require_approval_on_disagreement: true\n"))
    server = start_server(rules, rego)
    held = guarded(server, facts(failures=1), proposal("OPS.DISPATCH", 0.9, DISPATCH))["result"]
    assert held["execution"]["status"] == "PENDING_APPROVAL"
    (approval,) = held["explanation"]["guardrails"]["approvals"]
    assert approval["id"] == "RULES-DISAGREE"
    assert approval["message"] == "the rules would propose OPS.RETRY, not OPS.DISPATCH"
    pending = server.client.get("/operations/decisions/pending").json()["items"]
    assert [item["decision_id"] for item in pending] == [held["decision_id"]]
    page = server.client.get(f"/ui/decisions/{held['decision_id']}")
    assert page.status_code == 200 and "RULES-DISAGREE" in page.text
    shown = re.search(r'id="rules-would">(.*?)</dd>', page.text)
    assert shown and shown.group(1) == "disagree: OPS.RETRY with confidence 0.7 (retry-after-failure)"
    agreed = guarded(server, facts(), proposal("OPS.DISPATCH", 0.9, DISPATCH))["result"]
    assert agreed["execution"]["status"] == "APPROVED"


OUTSIDE = {
    "ruleset": "ops",
    "decision_type": "OPS.REASSIGN",
    "status": "EXECUTED",
    "confidence": 0.7,
    "actions": [{"type": "REASSIGN", "resource_id": "worker-001", "target_id": "worker-002"}],
    "facts": {"org_id": 7},
    "proposer": {"agent": "night-batch", "version": "3.1"},
    "decided_at": "2026-12-01T03:00:00Z",
    "reference": "batch-991",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_decisions_made_elsewhere_are_recorded_listed_apart_and_the_log_verifies(
    backend: str, request: pytest.FixtureRequest, start_server: Callable[..., Server], opa_bin: str
) -> None:
    db = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    server = start_server(*copy_ops_only(Path(request.getfixturevalue("tmp_path")) / "dirs"), db)
    own = guarded(server, facts(), proposal("OPS.DISPATCH", 0.9, DISPATCH))["result"]["decision_id"]
    posted = server.client.post("/v1/policy/decisions", json=OUTSIDE, headers=CALLER)
    assert posted.status_code == 201, posted.text
    record = posted.json()["record"]
    assert record["kind"] == "external" and record["external"]["decided_at"] == "2026-12-01T03:00:00.000000+00:00"
    listed = server.client.get("/v1/policy/decisions", params={"ruleset": "ops", "status": "EXECUTED"}).json()
    (item,) = listed["items"]
    assert (item["decision_id"], item["reference"], item["org_id"]) == (record["decision_id"], "batch-991", "7")
    assert server.client.get("/v1/policy/decisions", params={"status": "APPROVED"}).json()["items"] == []
    ours = [i["decision_id"] for i in server.client.get("/decisions").json()["items"]]
    assert ours == [own]  # never taken for one of opsgate's own
    assert server.client.get(f"/decisions/{record['decision_id']}").status_code == 404
    bad = server.client.post("/v1/policy/decisions", json={**OUTSIDE, "confidence": 2}, headers=CALLER)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "confidence"
    assert verified(server.db, opa_bin).startswith("2 records verified, chain intact")  # ours and the external one

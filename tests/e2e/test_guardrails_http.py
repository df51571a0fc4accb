"""Each guardrail, end to end: rules propose, the real OPA denies or holds, the answer escalates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

StartServer = Callable[..., Server]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def assert_escalated_by(result: dict[str, Any], policy: str, message: str, proposed: str, confidence: float) -> None:
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert result["decision"]["confidence"] == confidence
    assert result["execution"]["status"] == "ESCALATED"
    assert result["decision"]["proposed_actions"] == [
        {"type": "OPEN_INCIDENT", "autonomy": "L0", "resource_id": "worker-001", "reason": f"denied by {policy}"}
    ]
    explanation = result["explanation"]
    assert explanation["proposal"]["decision_type"] == proposed
    violations = explanation["guardrails"]["violations"]
    assert [(v["policy"], v["message"]) for v in violations] == [(policy, message)]
    assert explanation["guardrails"]["allow"] is False
    assert explanation["guardrails"]["available"] is True


def test_min_confidence_denies_a_proposal_below_0_6(server: Server) -> None:
    # REASSIGN at attempts 2, failures 2: 0.80 - 0.10 - 0.20 = 0.50
    result = result_of(server, ops_facts(attempts=2, failures=2, status="offline"))
    assert_escalated_by(result, "ops.min_confidence", "confidence 0.5 is below the minimum 0.6", "OPS.REASSIGN", 0.5)
    violation = result["explanation"]["guardrails"]["violations"][0]
    assert violation["id"] == "OPS-MIN-CONFIDENCE"
    assert violation["rule"] == "data.guardrails.ops.min_confidence.deny"
    assert violation["title"] == "Confidence below minimum"
    assert violation["severity"] == "medium"
    # the "below minimum" rule, not the "missing" rule that shares its policy id
    assert violation["location"] == "rego/guardrails/ops/min_confidence/min_confidence.rego:25"


def test_retry_limit_denies_retry_at_three_attempts(copied_dirs: tuple[Path, Path], start_server: StartServer) -> None:
    rules, rego = copied_dirs
    edit(rules / "ops.yaml", "max_attempts: 3", "max_attempts: 4")
    server = start_server(rules, rego)
    # RETRY at attempts 3, failures 1: 0.85 - 0.15 - 0.10 = 0.60, allowed by min confidence
    result = result_of(server, ops_facts(attempts=3, failures=1))
    assert_escalated_by(result, "ops.retry_limit", "RETRY denied: attempts 3 >= limit 3", "OPS.RETRY", 0.6)
    assert result_of(server, ops_facts(attempts=2, failures=1))["execution"]["status"] == "APPROVED"


def test_reassign_target_denies_the_current_resource_and_unavailable_candidates(
    copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    # A broken ruleset: it picks the first candidate, whatever its state.
    edit(
        rules / "ops.yaml",
        'filter(candidates, item.status == "available" and item.capacity > 0\n            and item.id != resource.id)',
        "candidates",
    )
    server = start_server(rules, rego)
    same = result_of(
        server, ops_facts(status="offline", candidates=[{"id": "worker-001", "capacity": 9, "status": "available"}])
    )
    assert same["explanation"]["proposal"]["actions"][0]["target_id"] == "worker-001"
    assert same["execution"]["status"] == "ESCALATED"
    assert [v["policy"] for v in same["explanation"]["guardrails"]["violations"]] == ["ops.reassign_target"]
    offline = result_of(
        server, ops_facts(status="offline", candidates=[{"id": "w-2", "capacity": 9, "status": "offline"}])
    )
    assert offline["execution"]["status"] == "ESCALATED"
    assert [v["policy"] for v in offline["explanation"]["guardrails"]["violations"]] == ["ops.reassign_target"]


def test_autonomy_above_the_org_ceiling_waits_for_approval(
    copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    (rego / "config" / "autonomy" / "data.json").write_text(
        json.dumps({"default_max_level": "L3", "orgs": {"7": "L1"}})
    )
    server = start_server(rules, rego)
    held = result_of(server, {**ops_facts(), "org_id": 7})
    assert held["decision"]["decision_type"] == "OPS.DISPATCH"
    assert held["execution"] == {
        "status": "PENDING_APPROVAL",
        "actions": [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}],
    }
    guardrails = held["explanation"]["guardrails"]
    assert guardrails["requires_approval"] is True and guardrails["allow"] is True
    assert [a["policy"] for a in guardrails["approvals"]] == ["ops.autonomy_ceiling"]
    # L1 (RETRY) is within org 7's ceiling; other orgs get the default L3.
    assert result_of(server, {**ops_facts(failures=1), "org_id": 7})["execution"]["status"] == "APPROVED"
    assert result_of(server, ops_facts())["execution"]["status"] == "APPROVED"


def test_changing_max_attempts_in_the_ruleset_changes_the_decision_without_python(
    server: Server, copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    assert result_of(server, ops_facts(attempts=3))["decision"]["decision_type"] == "OPS.ESCALATE"
    rules, rego = copied_dirs
    edit(rules / "ops.yaml", "max_attempts: 3", "max_attempts: 4")
    changed = result_of(start_server(rules, rego), ops_facts(attempts=3))
    assert changed["decision"]["decision_type"] == "OPS.DISPATCH"
    assert changed["decision"]["confidence"] == 0.75
    assert changed["execution"]["status"] == "APPROVED"

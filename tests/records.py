"""Hand-written log records for the store's tests: JSON fields in, the typed record out."""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain.record import Record


def typed(fields: dict[str, Any]) -> Record:
    """The record the store takes, from the JSON object a test writes out (its canonical body's keys)."""
    return msgspec.convert(fields, Record)


def fired(rule: str, won: bool) -> dict[str, Any]:
    return {"id": rule, "title": rule, "file": "rules/ops.yaml", "line": 1, "priority": 10, "won": won}


def violation(policy: str, violation_id: str) -> dict[str, Any]:
    return {"policy": policy, "id": violation_id, "rule": "deny", "title": "t", "message": "m", "severity": "high",
            "action_index": None, "location": None}  # fmt: skip


def guardrails(*violations: dict[str, Any]) -> dict[str, Any]:
    return {"available": True, "allow": not violations, "violations": list(violations), "requires_approval": False,
            "approvals": [], "revision": "b1", "error": None, "breaker": None}  # fmt: skip


def decided(decision_type: str, confidence: float) -> dict[str, Any]:
    return {"decision_type": decision_type, "confidence": confidence, "priority": "NORMAL", "proposed_actions": []}


def executed(status: str) -> dict[str, Any]:
    return {"status": status, "actions": []}


def decision_fields(decision_id: str, created_at: str, caller: str, ruleset: dict[str, Any]) -> dict[str, Any]:
    """Every field of a decision record, with placeholders where a store test does not care."""
    return {
        "kind": "decision", "decision_id": decision_id, "created_at": created_at, "caller": caller,
        "run_id": "r1", "agent": "agent", "ruleset": ruleset, "bundle_revision": "b1", "facts": {},
        "fired_rules": [], "proposal": None, "guardrails": guardrails(), "decision": decided("OPS.DISPATCH", 0.85),
        "execution": executed("APPROVED"), "summary": "s", "error": None, "latency_ms": {"total": 1.0},
    }  # fmt: skip

"""The metrics count what the decision use case hands them (service/ports/metrics.py's Answered):
each decision once, and each denying policy and violation id once per decision."""

from __future__ import annotations

from service.adapters.metrics import Metrics
from service.domain.decision import Violation
from service.ports.metrics import Answered
from tests.unit.test_metrics import samples


def violation(policy: str, violation_id: str, action_index: int) -> Violation:
    return Violation(policy, violation_id, "deny", "title", "message", "high", action_index)


def test_each_answer_counts_once_and_a_policy_denying_two_actions_counts_once() -> None:
    metrics = Metrics()
    denied = [violation("retry_limit", "OPS-1", 0), violation("retry_limit", "OPS-1", 1)]
    metrics.decided(
        [
            Answered("ops", "OPS.ESCALATE", "ESCALATED", denied),
            Answered("ops", "OPS.DISPATCH", "EXECUTED", []),
            Answered("ops", "OPS.DISPATCH", "EXECUTED", []),
        ],
        {"total": 4.0},
    )
    counted = samples(metrics)
    decisions = "opsgate_decisions_total"
    assert counted[(decisions, (("decision_type", "OPS.DISPATCH"), ("ruleset", "ops"), ("status", "EXECUTED")))] == 2
    assert counted[(decisions, (("decision_type", "OPS.ESCALATE"), ("ruleset", "ops"), ("status", "ESCALATED")))] == 1
    assert counted[("opsgate_guardrail_denials_total", (("id", "OPS-1"), ("policy", "retry_limit")))] == 1
    assert counted[("opsgate_decision_seconds_count", ())] == 1

package guardrails.ops.min_confidence_test

import data.guardrails.ops.min_confidence

_proposal(decision_type, confidence) := {"proposal": {
	"decision_type": decision_type,
	"confidence": confidence,
	"actions": [{"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "worker-002"}],
}}

_violation(message) := {
	"policy": "ops.min_confidence",
	"id": "OPS-MIN-CONFIDENCE",
	"rule": "data.guardrails.ops.min_confidence.deny",
	"title": "Confidence below minimum",
	"message": message,
	"severity": "medium",
	"action_index": null,
}

test_success_confidence_above_minimum if {
	count(min_confidence.deny) == 0 with input as _proposal("OPS.REASSIGN", 0.75)
}

test_success_confidence_exactly_minimum if {
	count(min_confidence.deny) == 0 with input as _proposal("OPS.REASSIGN", 0.6)
}

test_success_escalate_with_low_confidence if {
	count(min_confidence.deny) == 0 with input as _proposal("OPS.ESCALATE", 0.1)
}

test_success_escalate_without_confidence if {
	count(min_confidence.deny) == 0 with input as {"proposal": {"decision_type": "OPS.ESCALATE", "actions": []}}
}

test_fail_confidence_below_minimum if {
	min_confidence.deny == {_violation("confidence 0.5 is below the minimum 0.6")} with input as _proposal("OPS.REASSIGN", 0.5)
}

test_fail_confidence_just_below_minimum if {
	min_confidence.deny == {_violation("confidence 0.59 is below the minimum 0.6")} with input as _proposal("OPS.RETRY", 0.59)
}

test_fail_confidence_missing if {
	min_confidence.deny == {{
		"policy": "ops.min_confidence",
		"id": "OPS-MIN-CONFIDENCE",
		"rule": "data.guardrails.ops.min_confidence.deny",
		"title": "Confidence missing",
		"message": "confidence is missing or not a number; the minimum is 0.6",
		"severity": "medium",
		"action_index": null,
	}} with input as {"proposal": {"decision_type": "OPS.REASSIGN", "actions": []}}
}

test_fail_decision_type_missing if {
	min_confidence.deny == {_violation("confidence 0.2 is below the minimum 0.6")} with input as {"proposal": {"confidence": 0.2, "actions": []}}
}

test_fail_confidence_not_a_number if {
	{v.title | some v in min_confidence.deny} == {"Confidence missing"} with input as _proposal("OPS.REASSIGN", "0.9")
}

test_fail_decision_type_and_confidence_missing if {
	{v.title | some v in min_confidence.deny} == {"Confidence missing"} with input as {"proposal": {"actions": []}}
}

test_success_escalate_with_non_numeric_confidence if {
	count(min_confidence.deny) == 0 with input as _proposal("OPS.ESCALATE", "high")
}

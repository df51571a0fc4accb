package guardrails.hitl.clearance_confidence_test

import data.guardrails.hitl.clearance_confidence

_proposal(decision_type, confidence) := {
	"facts": {"org_id": 1, "system": "checkout"},
	"proposal": {
		"decision_type": decision_type,
		"confidence": confidence,
		"actions": [{"type": "PROCEED_AUTOMATED", "autonomy": "L2", "system": "checkout"}],
	},
}

_violation(title, message) := {
	"policy": "hitl.clearance_confidence",
	"id": "HITL-CLEARANCE-CONFIDENCE",
	"rule": "data.guardrails.hitl.clearance_confidence.deny",
	"title": title,
	"message": message,
	"severity": "high",
	"action_index": null,
}

test_success_confident_clearance if {
	count(clearance_confidence.deny) == 0 with input as _proposal("HITL.NOT_REQUIRED", 0.95)
}

test_success_clearance_exactly_minimum if {
	count(clearance_confidence.deny) == 0 with input as _proposal("HITL.NOT_REQUIRED", 0.8)
}

test_success_human_required_with_low_confidence if {
	count(clearance_confidence.deny) == 0 with input as _proposal("HITL.REQUIRED", 0.1)
}

test_success_human_required_without_confidence if {
	count(clearance_confidence.deny) == 0 with input as {"proposal": {"decision_type": "HITL.REQUIRED", "actions": []}}
}

test_fail_clearance_below_minimum if {
	clearance_confidence.deny == {_violation(
		"Clearance below minimum confidence",
		"no human deemed needed with confidence 0.75, below the minimum 0.8",
	)} with input as _proposal("HITL.NOT_REQUIRED", 0.75)
}

test_fail_clearance_without_confidence if {
	clearance_confidence.deny == {_violation(
		"Clearance confidence missing",
		"no human deemed needed without a numeric confidence; the minimum is 0.8",
	)} with input as {"proposal": {"decision_type": "HITL.NOT_REQUIRED", "actions": []}}
}

test_fail_clearance_confidence_not_a_number if {
	{v.title | some v in clearance_confidence.deny} == {"Clearance confidence missing"} with input as _proposal("HITL.NOT_REQUIRED", "0.9")
}

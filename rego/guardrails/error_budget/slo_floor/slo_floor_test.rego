package guardrails.error_budget.slo_floor_test

import data.guardrails.error_budget.slo_floor

_input(availability, quality, consistency) := {
	"facts": {
		"service": "checkout",
		"availability": {"actual": 0.995, "slo": availability},
		"quality": {"actual": 0.97, "slo": quality},
		"consistency": {"actual": 0.95, "slo": consistency},
	},
	"proposal": {
		"decision_type": "ERROR_BUDGET.HEALTHY",
		"confidence": 0.95,
		"actions": [{"type": "SET_DEPLOYMENT_POLICY", "autonomy": "L2", "policy": "HEALTHY", "halt_deployment": false}],
	},
}

_violation(message) := {
	"policy": "error_budget.slo_floor",
	"id": "ERROR-BUDGET-SLO-FLOOR",
	"rule": "data.guardrails.error_budget.slo_floor.deny",
	"title": "SLO target below floor",
	"message": message,
	"severity": "high",
	"action_index": null,
}

test_success_default_targets if {
	count(slo_floor.deny) == 0 with input as _input(0.99, 0.95, 0.9)
}

test_success_targets_exactly_at_floor if {
	count(slo_floor.deny) == 0 with input as _input(0.95, 0.9, 0.8)
}

test_success_stricter_targets if {
	count(slo_floor.deny) == 0 with input as _input(0.999, 0.99, 0.95)
}

test_success_missing_target_is_left_to_the_rules if {
	count(slo_floor.deny) == 0 with input as _input(null, 0.95, 0.9)
}

test_fail_availability_below_floor if {
	slo_floor.deny == {_violation("availability SLO 0.9 is below the floor 0.95")} with input as _input(0.9, 0.95, 0.9)
}

test_fail_each_target_below_floor_reported if {
	slo_floor.deny == {
		_violation("availability SLO 0.5 is below the floor 0.95"),
		_violation("quality SLO 0.89 is below the floor 0.9"),
		_violation("consistency SLO 0.79 is below the floor 0.8"),
	} with input as _input(0.5, 0.89, 0.79)
}

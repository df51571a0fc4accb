package guardrails.ops.reassign_target_test

import data.guardrails.ops.reassign_target

_candidates := [
	{"id": "worker-002", "capacity": 50, "status": "available"},
	{"id": "worker-003", "capacity": 80, "status": "busy"},
]

_reassign(target_id) := {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": target_id}

_input(candidates, actions) := {
	"facts": {
		"org_id": 0,
		"resource": {"id": "worker-001", "capacity": 100, "status": "available"},
		"candidates": candidates,
	},
	"proposal": {"decision_type": "OPS.REASSIGN", "confidence": 0.75, "actions": actions},
}

_violation(message, action_index) := {
	"policy": "ops.reassign_target",
	"id": "OPS-REASSIGN-TARGET",
	"rule": "data.guardrails.ops.reassign_target.deny",
	"title": "Invalid reassign target",
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_available_candidate if {
	count(reassign_target.deny) == 0 with input as _input(_candidates, [_reassign("worker-002")])
}

test_success_null_target if {
	count(reassign_target.deny) == 0 with input as _input(_candidates, [_reassign(null)])
}

test_success_null_target_without_candidates if {
	count(reassign_target.deny) == 0 with input as _input([], [_reassign(null)])
}

test_success_missing_target if {
	action := {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001"}
	count(reassign_target.deny) == 0 with input as _input(_candidates, [action])
}

test_success_duplicate_candidate_one_available if {
	candidates := [{"id": "worker-003", "status": "busy"}, {"id": "worker-003", "status": "available"}]
	count(reassign_target.deny) == 0 with input as _input(candidates, [_reassign("worker-003")])
}

test_success_other_action_types_ignored if {
	actions := [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001", "target_id": "worker-001"}]
	count(reassign_target.deny) == 0 with input as _input([], actions)
}

test_fail_target_is_current_resource if {
	reassign_target.deny == {_violation("REASSIGN denied: target worker-001 is the current resource", 0)} with input as _input(_candidates, [_reassign("worker-001")])
}

test_fail_target_is_current_resource_listed_as_candidate if {
	candidates := array.concat(_candidates, [{"id": "worker-001", "status": "available"}])
	reassign_target.deny == {_violation("REASSIGN denied: target worker-001 is the current resource", 0)} with input as _input(candidates, [_reassign("worker-001")])
}

test_fail_target_candidate_not_available if {
	reassign_target.deny == {_violation("REASSIGN denied: target worker-003 is not available", 0)} with input as _input(_candidates, [_reassign("worker-003")])
}

test_fail_target_not_in_candidates if {
	reassign_target.deny == {_violation("REASSIGN denied: target worker-009 is not among the candidates", 0)} with input as _input(_candidates, [_reassign("worker-009")])
}

test_fail_target_with_empty_candidates if {
	reassign_target.deny == {_violation("REASSIGN denied: target worker-002 is not among the candidates", 0)} with input as _input([], [_reassign("worker-002")])
}

test_fail_each_bad_reassign_reported_with_its_index if {
	actions := [_reassign("worker-002"), _reassign("worker-003"), _reassign(null), _reassign("worker-001")]
	reassign_target.deny == {
		_violation("REASSIGN denied: target worker-003 is not available", 1),
		_violation("REASSIGN denied: target worker-001 is the current resource", 3),
	} with input as _input(_candidates, actions)
}

package guardrails.ops.retry_limit_test

import data.guardrails.ops.retry_limit

_retry := {"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 30}

_input(attempts, actions) := {
	"facts": {"org_id": 0, "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": attempts}},
	"proposal": {"decision_type": "OPS.RETRY", "confidence": 0.9, "actions": actions},
}

_violation(message, action_index) := {
	"policy": "ops.retry_limit",
	"id": "OPS-RETRY-LIMIT",
	"rule": "data.guardrails.ops.retry_limit.deny",
	"title": "Retry limit reached",
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_first_attempt if {
	count(retry_limit.deny) == 0 with input as _input(1, [_retry])
}

test_success_attempts_below_limit if {
	count(retry_limit.deny) == 0 with input as _input(2, [_retry])
}

test_success_limit_reached_without_retry if {
	count(retry_limit.deny) == 0 with input as _input(5, [{"type": "OPEN_INCIDENT", "autonomy": "L0"}])
}

test_fail_attempts_at_limit if {
	retry_limit.deny == {_violation("RETRY denied: attempts 3 >= limit 3", 0)} with input as _input(3, [_retry])
}

test_fail_attempts_above_limit if {
	retry_limit.deny == {_violation("RETRY denied: attempts 7 >= limit 3", 0)} with input as _input(7, [_retry])
}

test_fail_each_retry_reported_with_its_index if {
	actions := [{"type": "OPEN_INCIDENT", "autonomy": "L0"}, _retry, _retry]
	retry_limit.deny == {
		_violation("RETRY denied: attempts 3 >= limit 3", 1),
		_violation("RETRY denied: attempts 3 >= limit 3", 2),
	} with input as _input(3, actions)
}

package guardrails.ai_breaker.consistent_state_test

import data.guardrails.ai_breaker.consistent_state

_input(state, failures, type) := {
	"facts": {"org_id": 0, "component": "support-bot", "state": state, "failures": failures, "successes": 0, "half_open_calls": 0},
	"proposal": {"decision_type": "BREAKER.ALLOW", "confidence": 1, "actions": [{"type": type, "autonomy": "L3", "component": "support-bot"}]},
}

_deny(message) := {
	"policy": "ai_breaker.consistent_state",
	"id": "AI-BREAKER-CONSISTENT-STATE",
	"rule": "data.guardrails.ai_breaker.consistent_state.deny",
	"title": "Call allowed by an inconsistent breaker",
	"message": message,
	"severity": "high",
	"action_index": 0,
}

test_success_closed_below_threshold if {
	count(consistent_state.deny) == 0 with input as _input("closed", 4, "ALLOW_CALL")
}

test_success_half_open_above_threshold if {
	count(consistent_state.deny) == 0 with input as _input("half_open", 7, "ALLOW_CALL")
}

test_success_recording_a_failure_at_threshold if {
	count(consistent_state.deny) == 0 with input as _input("closed", 5, "RECORD_FAILURE")
}

test_fail_call_closed_at_threshold if {
	consistent_state.deny == {_deny("ALLOW_CALL while closed with 5 failures (threshold 5): the breaker should be open")} with input as _input("closed", 5, "ALLOW_CALL")
}

test_fail_probe_closed_above_threshold if {
	consistent_state.deny == {_deny("ALLOW_PROBE while closed with 6 failures (threshold 5): the breaker should be open")} with input as _input("closed", 6, "ALLOW_PROBE")
}

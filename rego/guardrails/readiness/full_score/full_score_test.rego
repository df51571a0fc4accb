package guardrails.readiness.full_score_test

import data.guardrails.readiness.full_score

_approve(score) := {"type": "APPROVE_RELEASE", "autonomy": "L2", "component": "support-bot", "score": score}

_input(actions) := {
	"facts": {"org_id": 0, "component": "support-bot", "checks": {}},
	"proposal": {"decision_type": "READINESS.READY", "confidence": 1, "actions": actions},
}

_deny(message, action_index) := {
	"policy": "readiness.full_score",
	"id": "READINESS-FULL-SCORE",
	"rule": "data.guardrails.readiness.full_score.deny",
	"title": "Release approved below a full score",
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_full_score if {
	count(full_score.deny) == 0 with input as _input([_approve(1)])
}

test_success_full_score_as_float if {
	count(full_score.deny) == 0 with input as _input([_approve(1.0)])
}

test_success_blocked_release_below_full_score if {
	count(full_score.deny) == 0 with input as _input([{"type": "BLOCK_RELEASE", "component": "support-bot", "score": 0.9412}])
}

test_fail_approval_below_full_score if {
	full_score.deny == {_deny("APPROVE_RELEASE of support-bot with score 0.9412: every required check must pass", 0)} with input as _input([_approve(0.9412)])
}

test_fail_approval_without_a_score if {
	full_score.deny == {_deny("APPROVE_RELEASE of support-bot with score null: every required check must pass", 1)} with input as _input([
		{"type": "NOTIFY"},
		{"type": "APPROVE_RELEASE", "component": "support-bot"},
	])
}

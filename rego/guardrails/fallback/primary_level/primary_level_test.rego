package guardrails.fallback.primary_level_test

import data.guardrails.fallback.primary_level

_use(level, source) := {"type": "USE_FALLBACK", "autonomy": "L3", "component": "support-bot", "level": level, "source": source}

_input(primary_ok, actions) := {
	"facts": {"org_id": 0, "component": "support-bot", "primary_ok": primary_ok},
	"proposal": {"decision_type": "FALLBACK.PRIMARY", "confidence": 1, "actions": actions},
}

_deny(message, action_index) := {
	"policy": "fallback.primary_level",
	"id": "FALLBACK-PRIMARY-LEVEL",
	"rule": "data.guardrails.fallback.primary_level.deny",
	"title": "Primary used while it fails",
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_primary_when_ok if {
	count(primary_level.deny) == 0 with input as _input(true, [_use(0, "primary")])
}

test_success_fallback_when_primary_fails if {
	count(primary_level.deny) == 0 with input as _input(false, [_use(1, "cached_response")])
}

test_fail_primary_when_it_fails if {
	primary_level.deny == {_deny("USE_FALLBACK level 0 (primary) while primary_ok is false", 0)} with input as _input(false, [_use(0, "primary")])
}

test_fail_primary_without_primary_ok if {
	primary_level.deny == {_deny("USE_FALLBACK level 0 (primary) while primary_ok is null", 1)} with input as {
		"facts": {"component": "support-bot"},
		"proposal": {"actions": [{"type": "SERVE_ERROR", "level": 4}, _use(0, "primary")]},
	}
}

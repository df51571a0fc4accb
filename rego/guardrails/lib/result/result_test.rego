package guardrails.lib.result_test

import data.guardrails.lib.result

test_success_fail_from_annotations if {
	chain := [
		{"path": ["guardrails", "ops", "retry_limit", "deny"], "annotations": {
			"scope": "rule",
			"title": "Retry limit reached",
			"custom": {"id": "OPS-RETRY-LIMIT", "severity": "high"},
		}},
		{"path": ["guardrails", "ops", "retry_limit"], "annotations": {"scope": "package", "title": "Retry limit"}},
	]
	result.fail(chain, "RETRY denied", 2) == {
		"policy": "ops.retry_limit",
		"id": "OPS-RETRY-LIMIT",
		"rule": "data.guardrails.ops.retry_limit.deny",
		"title": "Retry limit reached",
		"message": "RETRY denied",
		"severity": "high",
		"action_index": 2,
	}
}

test_success_fail_without_annotations_uses_defaults if {
	result.fail([{"path": ["guardrails", "ops", "x", "deny"]}], "m", null) == {
		"policy": "ops.x",
		"id": "",
		"rule": "data.guardrails.ops.x.deny",
		"title": "deny",
		"message": "m",
		"severity": "",
		"action_index": null,
	}
}

test_success_fail_with_some_annotations_uses_defaults_for_the_others if {
	chain := [{"path": ["guardrails", "ops", "x", "approval"], "annotations": {"scope": "rule", "custom": {"id": "OPS-X"}}}]
	result.fail(chain, "m", 0) == {
		"policy": "ops.x",
		"id": "OPS-X",
		"rule": "data.guardrails.ops.x.approval",
		"title": "approval",
		"message": "m",
		"severity": "",
		"action_index": 0,
	}
}

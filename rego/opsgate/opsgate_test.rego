package opsgate_test

import data.opsgate

_clean := {
	"ruleset": {"name": "ops", "version": "3f2a"},
	"facts": {
		"org_id": 0,
		"process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
		"resource": {"id": "worker-001", "capacity": 100, "status": "available"},
		"history": {"failures": 0, "latency": 500},
		"candidates": [{"id": "worker-002", "capacity": 50, "status": "available"}],
	},
	"proposal": {
		"decision_type": "OPS.REASSIGN",
		"confidence": 0.75,
		"actions": [{"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "worker-002"}],
	},
}

# Breaks min_confidence, retry_limit and reassign_target at once.
_bad := object.union(_clean, {
	"facts": {"process": {"attempts": 3}, "candidates": []},
	"proposal": {
		"decision_type": "OPS.RETRY",
		"confidence": 0.5,
		"actions": [
			{"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "worker-001"},
			{"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 30},
		],
	},
})

# The operators' configuration (rego/config/) as shipped: set by every test that depends on it, since a
# reload runs these tests and an operator may change the configuration.
_default_config := {"default_max_level": "L3", "orgs": {}}

_allow := {"allow": true, "violations": [], "requires_approval": false, "approvals": []}

_bad_violations := [
	{
		"policy": "ops.min_confidence",
		"id": "OPS-MIN-CONFIDENCE",
		"rule": "data.guardrails.ops.min_confidence.deny",
		"title": "Confidence below minimum",
		"message": "confidence 0.5 is below the minimum 0.6",
		"severity": "medium",
		"action_index": null,
	},
	{
		"policy": "ops.reassign_target",
		"id": "OPS-REASSIGN-TARGET",
		"rule": "data.guardrails.ops.reassign_target.deny",
		"title": "Invalid reassign target",
		"message": "REASSIGN denied: target worker-001 is the current resource",
		"severity": "high",
		"action_index": 0,
	},
	{
		"policy": "ops.retry_limit",
		"id": "OPS-RETRY-LIMIT",
		"rule": "data.guardrails.ops.retry_limit.deny",
		"title": "Retry limit reached",
		"message": "RETRY denied: attempts 3 >= limit 3",
		"severity": "high",
		"action_index": 1,
	},
]

_org_approval := {
	"policy": "ops.autonomy_ceiling",
	"id": "OPS-AUTONOMY-CEILING",
	"rule": "data.guardrails.ops.autonomy_ceiling.approval",
	"title": "Autonomy above org maximum",
	"message": "REASSIGN autonomy L2 exceeds the maximum L1 for org 0",
	"severity": "medium",
	"action_index": 0,
}

test_success_clean_proposal_allowed if {
	opsgate.decision == _allow with input as _clean
		with data.config.autonomy as _default_config
}

test_success_org_override_requires_approval if {
	opsgate.decision == {
		"allow": true,
		"violations": [],
		"requires_approval": true,
		"approvals": [_org_approval],
	} with input as _clean
		with data.config.autonomy as {"default_max_level": "L3", "orgs": {"0": "L1"}}
}

test_success_unknown_ruleset_allowed if {
	opsgate.decision == _allow with input as object.union(_bad, {"ruleset": {"name": "billing"}})
}

test_success_non_ruleset_packages_allowed if {
	opsgate.decision == _allow with input as object.union(_bad, {"ruleset": {"name": "main"}})
	opsgate.decision == _allow with input as object.union(_bad, {"ruleset": {"name": "lib"}})
}

test_fail_violations_collected_from_several_policies if {
	opsgate.decision == {
		"allow": false,
		"violations": _bad_violations,
		"requires_approval": false,
		"approvals": [],
	} with input as _bad
		with data.config.autonomy as _default_config
}

test_fail_violations_and_approvals_together if {
	opsgate.decision == {
		"allow": false,
		"violations": _bad_violations,
		"requires_approval": true,
		"approvals": [_org_approval],
	} with input as _bad
		with data.config.autonomy as {"default_max_level": "L3", "orgs": {"0": "L1"}}
}

test_fail_sorted_by_policy_then_action_index if {
	item := object.union(_clean, {
		"facts": {"process": {"attempts": 4}},
		"proposal": {"actions": [
			{"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 10},
			{"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": "worker-009"},
			{"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 20},
		]},
	})
	[[v.policy, v.action_index] | some v in opsgate.decision.violations] == [
		["ops.reassign_target", 1],
		["ops.retry_limit", 0],
		["ops.retry_limit", 2],
	] with input as item
}

package guardrails.ops.autonomy_ceiling_test

import data.guardrails.ops.autonomy_ceiling

_config := {"default_max_level": "L3", "orgs": {"42": "L1"}}

# The tests set the configuration they need: rego/config/ is the operators' to change, and a
# reload runs these tests, so none may depend on what it holds today.
_default_config := {"default_max_level": "L3", "orgs": {}}

_action(type, autonomy) := {"type": type, "autonomy": autonomy, "resource_id": "worker-001"}

_input(org_id, actions) := {
	"facts": {"org_id": org_id, "resource": {"id": "worker-001"}, "candidates": []},
	"proposal": {"decision_type": "OPS.REASSIGN", "confidence": 0.75, "actions": actions},
}

_approval(message, action_index) := {
	"policy": "ops.autonomy_ceiling",
	"id": "OPS-AUTONOMY-CEILING",
	"rule": "data.guardrails.ops.autonomy_ceiling.approval",
	"title": "Autonomy above org maximum",
	"message": message,
	"severity": "medium",
	"action_index": action_index,
}

test_success_default_allows_l3 if {
	actions := [_action("OPEN_INCIDENT", "L0"), _action("REASSIGN", "L2"), _action("TRIGGER_PROCESS", "L3")]
	count(autonomy_ceiling.approval) == 0 with input as _input(0, actions)
		with data.config.autonomy as _default_config
}

test_success_org_override_at_level if {
	count(autonomy_ceiling.approval) == 0 with input as _input(42, [_action("RETRY", "L1")])
		with data.config.autonomy as _config
}

test_success_other_org_uses_default if {
	count(autonomy_ceiling.approval) == 0 with input as _input(7, [_action("REASSIGN", "L2")])
		with data.config.autonomy as _config
}

test_success_l0_allowed_with_broken_config if {
	count(autonomy_ceiling.approval) == 0 with input as _input(0, [_action("OPEN_INCIDENT", "L0")])
		with data.config.autonomy as {"default_max_level": "three", "orgs": {}}
}

test_fail_above_default if {
	autonomy_ceiling.approval == {_approval("REASSIGN autonomy L4 exceeds the maximum L3 for org 0", 0)} with input as _input(0, [_action("REASSIGN", "L4")])
		with data.config.autonomy as _default_config
}

test_fail_above_org_override if {
	actions := [_action("OPEN_INCIDENT", "L0"), _action("RETRY", "L1"), _action("REASSIGN", "L2")]
	autonomy_ceiling.approval == {_approval("REASSIGN autonomy L2 exceeds the maximum L1 for org 42", 2)} with input as _input(42, actions)
		with data.config.autonomy as _config
}

test_fail_org_id_given_as_string if {
	autonomy_ceiling.approval == {_approval("TRIGGER_PROCESS autonomy L2 exceeds the maximum L1 for org 42", 0)} with input as _input("42", [_action("TRIGGER_PROCESS", "L2")])
		with data.config.autonomy as _config
}

test_fail_malformed_max_counts_as_l0 if {
	autonomy_ceiling.approval == {_approval("RETRY autonomy L1 exceeds the maximum L0 for org 0", 0)} with input as _input(0, [_action("RETRY", "L1")])
		with data.config.autonomy as {"default_max_level": "three", "orgs": {}}
}

test_fail_missing_config_counts_as_l0 if {
	autonomy_ceiling.approval == {_approval("RETRY autonomy L1 exceeds the maximum L0 for org 0", 0)} with input as _input(0, [_action("RETRY", "L1")])
		with data.config.autonomy as {}
}

test_fail_unknown_action_level if {
	autonomy_ceiling.approval == {{
		"policy": "ops.autonomy_ceiling",
		"id": "OPS-AUTONOMY-CEILING",
		"rule": "data.guardrails.ops.autonomy_ceiling.approval",
		"title": "Autonomy level unknown",
		"message": "RETRY autonomy null is not a valid level (L<n>)",
		"severity": "medium",
		"action_index": 0,
	}} with input as _input(0, [{"type": "RETRY", "resource_id": "worker-001"}])
		with data.config.autonomy as _default_config
}

test_fail_lowercase_action_level if {
	{a.title | some a in autonomy_ceiling.approval} == {"Autonomy level unknown"} with input as _input(0, [_action("RETRY", "l1")])
		with data.config.autonomy as _default_config
}

test_fail_level_beyond_the_common_ones_is_parsed if {
	autonomy_ceiling.approval == {_approval("REASSIGN autonomy L12 exceeds the maximum L10 for org 42", 0)} with input as _input(42, [_action("REASSIGN", "L12")])
		with data.config.autonomy as {"default_max_level": "L3", "orgs": {"42": "L10"}}
}

test_success_level_with_leading_zero_is_parsed if {
	count(autonomy_ceiling.approval) == 0 with input as _input(0, [_action("RETRY", "L03")])
		with data.config.autonomy as _default_config
}

test_fail_org_override_without_a_default if {
	autonomy_ceiling.approval == {_approval("RETRY autonomy L2 exceeds the maximum L1 for org 42", 0)} with input as _input(42, [_action("RETRY", "L2")])
		with data.config.autonomy as {"orgs": {"42": "L1"}}
}

test_fail_malformed_org_override_counts_as_l0_not_the_default if {
	autonomy_ceiling.approval == {_approval("RETRY autonomy L1 exceeds the maximum L0 for org 42", 0)} with input as _input(42, [_action("RETRY", "L1")])
		with data.config.autonomy as {"default_max_level": "L3", "orgs": {"42": "one"}}
}

package guardrails.deploy.bypass_test

import data.guardrails.deploy.bypass

_deploy(bypass) := {"type": "DEPLOY", "autonomy": "L2", "component": "support-bot", "version": "v7", "bypass": bypass}

_input(scenario, requested, actions) := {
	"facts": {"org_id": 0, "component": "support-bot", "version": "v7", "scenario": scenario, "bypass_requested": requested},
	"proposal": {"decision_type": "DEPLOY.NEW_MODEL", "confidence": 0.9, "actions": actions},
}

_violation(title, message, action_index) := {
	"policy": "deploy.bypass",
	"id": "DEPLOY-BYPASS",
	"rule": "data.guardrails.deploy.bypass.deny",
	"title": title,
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_hotfix_may_bypass if {
	count(bypass.deny) == 0 with input as _input("security_hotfix", true, [_deploy(true), {"type": "NOTIFY", "autonomy": "L3"}])
}

test_success_hotfix_bypass_without_request if {
	count(bypass.deny) == 0 with input as _input("security_hotfix", false, [_deploy(true)])
}

test_success_no_bypass_for_new_model if {
	count(bypass.deny) == 0 with input as _input("new_model", false, [_deploy(false)])
}

test_success_bypass_field_on_other_action_type if {
	count(bypass.deny) == 0 with input as _input("model_config", false, [{"type": "NOTIFY", "bypass": true}])
}

test_fail_bypass_proposed_for_new_model if {
	bypass.deny == {_violation(
		"Bypass proposed outside a security hotfix",
		"DEPLOY with bypass denied: scenario new_model is not security_hotfix",
		0,
	)} with input as _input("new_model", true, [_deploy(true)])
}

test_fail_bypass_proposed_without_request if {
	bypass.deny == {_violation(
		"Bypass proposed outside a security hotfix",
		"DEPLOY with bypass denied: scenario fine_tuning is not security_hotfix",
		1,
	)} with input as _input("fine_tuning", false, [{"type": "NOTIFY"}, _deploy(true)])
}

test_fail_bypass_requested_but_not_proposed if {
	bypass.deny == {_violation(
		"Bypass requested outside a security hotfix",
		"bypass requested for scenario generated_code; only security_hotfix may bypass",
		null,
	)} with input as _input("generated_code", true, [_deploy(false)])
}

test_fail_bypass_with_scenario_missing if {
	bypass.deny == {_violation(
		"Bypass proposed outside a security hotfix",
		"DEPLOY with bypass denied: scenario null is not security_hotfix",
		0,
	)} with input as {"facts": {}, "proposal": {"actions": [_deploy(true)]}}
}

package guardrails.deploy.human_approval_test

import data.guardrails.deploy.human_approval

_deploy := {"type": "DEPLOY", "autonomy": "L2", "component": "support-bot", "version": "v7", "bypass": false}

_facts(scenario) := {"org_id": 0, "component": "support-bot", "version": "v7", "scenario": scenario, "bypass_requested": false}

_input(facts, actions) := {
	"facts": facts,
	"proposal": {"decision_type": "DEPLOY.PLAN", "confidence": 0.9, "actions": actions},
}

_approval(title, message, action_index) := {
	"policy": "deploy.human_approval",
	"id": "DEPLOY-HUMAN-APPROVAL",
	"rule": "data.guardrails.deploy.human_approval.approval",
	"title": title,
	"message": message,
	"severity": "medium",
	"action_index": action_index,
}

test_success_new_model_at_threshold if {
	count(human_approval.approval) == 0 with input as _input(object.union(_facts("new_model"), {"traffic_pct": 25}), [_deploy])
}

test_success_new_model_without_traffic_is_shadow if {
	count(human_approval.approval) == 0 with input as _input(_facts("new_model"), [_deploy])
}

test_success_prompt_drift_at_limit if {
	count(human_approval.approval) == 0 with input as _input(object.union(_facts("prompt_update"), {"drift": 0.05}), [_deploy])
}

test_success_other_scenarios_automatic if {
	every scenario in ["fine_tuning", "security_hotfix", "model_config"] {
		count(human_approval.approval) == 0 with input as _input(object.union(_facts(scenario), {"traffic_pct": 100}), [_deploy])
	}
}

test_success_generated_code_without_deploy_action if {
	count(human_approval.approval) == 0 with input as _input(_facts("generated_code"), [{"type": "HOLD_FOR_REVIEW"}])
}

test_fail_generated_code_always if {
	human_approval.approval == {_approval(
		"Generated code needs a human",
		"generated code v7 of support-bot needs a human sign-off",
		0,
	)} with input as _input(_facts("generated_code"), [_deploy])
}

test_fail_new_model_above_threshold if {
	human_approval.approval == {_approval(
		"New model above the approval threshold",
		"new model at 26% of the traffic needs approval above 25%",
		0,
	)} with input as _input(object.union(_facts("new_model"), {"traffic_pct": 26}), [_deploy])
}

test_fail_prompt_drift_above_limit if {
	human_approval.approval == {_approval(
		"Prompt drift needs a review",
		"prompt drift 0.08 is not within 0.05: review before the A/B test",
		0,
	)} with input as _input(object.union(_facts("prompt_update"), {"drift": 0.08}), [_deploy])
}

test_fail_prompt_drift_not_measured if {
	human_approval.approval == {_approval(
		"Prompt drift needs a review",
		"prompt drift null is not within 0.05: review before the A/B test",
		1,
	)} with input as _input(_facts("prompt_update"), [{"type": "NOTIFY"}, _deploy])
}

package guardrails.drift.production_rollback_test

import data.guardrails.drift.production_rollback

# The tests set the list they need: rego/config/ is the operators' to change.
_config := {"orgs": {"0": ["checkout-assistant"], "7": ["search-ranker", "support-bot"]}}

_action(type, component) := {"type": type, "autonomy": "L2", "component": component, "drift_score": 0.35}

_input(org_id, actions) := {
	"facts": {"org_id": org_id, "component": "support-bot", "drift_score": 0.35},
	"proposal": {"decision_type": "DRIFT.URGENT", "confidence": 0.9, "actions": actions},
}

_approval(message, action_index) := {
	"policy": "drift.production_rollback",
	"id": "DRIFT-PRODUCTION-ROLLBACK",
	"rule": "data.guardrails.drift.production_rollback.approval",
	"title": "Production rollback needs approval",
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_rollback_of_a_component_not_in_production if {
	count(production_rollback.approval) == 0 with input as _input(0, [_action("ROLLBACK", "support-bot")])
		with data.config.production as _config
}

test_success_other_org_without_a_list if {
	count(production_rollback.approval) == 0 with input as _input(3, [_action("ROLLBACK", "support-bot")])
		with data.config.production as _config
}

test_success_missing_config if {
	count(production_rollback.approval) == 0 with input as _input(7, [_action("ROLLBACK", "support-bot")])
		with data.config.production as {}
}

test_success_other_actions_on_production if {
	actions := [_action("INCREASE_MONITORING", "support-bot"), _action("TRACK_TREND", "support-bot")]
	count(production_rollback.approval) == 0 with input as _input(7, actions)
		with data.config.production as _config
}

test_fail_rollback_of_a_production_component if {
	production_rollback.approval == {_approval(
		"ROLLBACK of production component support-bot (org 7) at drift score 0.35 needs approval",
		1,
	)} with input as _input(7, [_action("NONE", "support-bot"), _action("ROLLBACK", "support-bot")])
		with data.config.production as _config
}

test_fail_org_id_given_as_string if {
	production_rollback.approval == {_approval(
		"ROLLBACK of production component checkout-assistant (org 0) at drift score 0.35 needs approval",
		0,
	)} with input as _input("0", [_action("ROLLBACK", "checkout-assistant")])
		with data.config.production as _config
}

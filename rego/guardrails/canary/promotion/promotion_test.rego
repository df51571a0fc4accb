package guardrails.canary.promotion_test

import data.guardrails.canary.promotion

_stable := {"error_rate": 0.004, "quality_score": 0.82, "latency_p95_ms": 1200, "consistency": 0.95}

_promote(from, to) := {"type": "PROMOTE", "autonomy": "L2", "deployment": "support-bot v8", "from_stage": from, "to_stage": to}

_complete(stage) := {"type": "COMPLETE", "autonomy": "L2", "deployment": "support-bot v8", "stage": stage}

_input(stage, metrics, actions) := {
	"facts": {"org_id": 0, "deployment": "support-bot v8", "stage": stage, "stage_minutes": 30, "metrics": metrics},
	"proposal": {"decision_type": "CANARY.PROMOTE", "confidence": 0.9, "actions": actions},
}

_violation(title, message, action_index) := {
	"policy": "canary.promotion",
	"id": "CANARY-PROMOTION",
	"rule": "data.guardrails.canary.promotion.deny",
	"title": title,
	"message": message,
	"severity": "high",
	"action_index": action_index,
}

test_success_promote_each_stage_to_the_next if {
	every from, to in {5: 25, 25: 50, 50: 100} {
		count(promotion.deny) == 0 with input as _input(from, _stable, [_promote(from, to)])
	}
}

test_success_complete_at_last_stage if {
	count(promotion.deny) == 0 with input as _input(100, _stable, [_complete(100)])
}

test_success_metrics_at_their_limits if {
	limits := {"error_rate": 0.01, "quality_score": 0.7, "latency_p95_ms": 2000, "consistency": 0.9}
	count(promotion.deny) == 0 with input as _input(50, limits, [_promote(50, 100)])
}

test_success_rollback_while_violated if {
	breached := object.union(_stable, {"error_rate": 0.2, "consistency": 0.5})
	actions := [
		{"type": "ROLLBACK", "autonomy": "L3", "from_stage": 50, "to_stage": 0},
		{"type": "THRESHOLD_VIOLATED", "autonomy": "L3", "metric": "error_rate"},
	]
	count(promotion.deny) == 0 with input as _input(50, breached, actions)
}

test_success_hold_while_violated if {
	breached := object.union(_stable, {"latency_p95_ms": 2500})
	count(promotion.deny) == 0 with input as _input(25, breached, [{"type": "HOLD", "stage": 25}])
}

test_fail_promote_skips_a_stage if {
	promotion.deny == {_violation(
		"Promotion skips a stage",
		"PROMOTE from stage 5 to 50 denied: the next stage is 25",
		0,
	)} with input as _input(5, _stable, [_promote(5, 50)])
}

test_fail_promote_backwards if {
	promotion.deny == {_violation(
		"Promotion skips a stage",
		"PROMOTE from stage 50 to 25 denied: the next stage is 100",
		0,
	)} with input as _input(50, _stable, [_promote(50, 25)])
}

test_fail_promote_beyond_last_stage if {
	promotion.deny == {_violation(
		"Promotion skips a stage",
		"PROMOTE from stage 100 to 100 denied: the next stage is none",
		0,
	)} with input as _input(100, _stable, [_promote(100, 100)])
}

test_fail_promote_without_target if {
	promotion.deny == {_violation(
		"Promotion skips a stage",
		"PROMOTE from stage 25 to null denied: the next stage is 50",
		0,
	)} with input as _input(25, _stable, [{"type": "PROMOTE", "autonomy": "L2"}])
}

test_fail_complete_before_last_stage if {
	promotion.deny == {_violation(
		"Completion before the last stage",
		"COMPLETE at stage 50 denied: only stage 100 completes",
		0,
	)} with input as _input(50, _stable, [_complete(50)])
}

test_fail_promote_while_error_rate_above_limit if {
	metrics := object.union(_stable, {"error_rate": 0.03})
	promotion.deny == {_violation(
		"Promotion while a metric is beyond its limit",
		"PROMOTE at stage 25 denied: error_rate is 0.03, the maximum is 0.01",
		0,
	)} with input as _input(25, metrics, [_promote(25, 50)])
}

test_fail_complete_names_each_metric_beyond_its_limit if {
	metrics := {"error_rate": 0.004, "quality_score": 0.5, "latency_p95_ms": 2500, "consistency": 0.95}
	promotion.deny == {
		_violation(
			"Promotion while a metric is beyond its limit",
			"COMPLETE at stage 100 denied: quality_score is 0.5, the minimum is 0.7",
			1,
		),
		_violation(
			"Promotion while a metric is beyond its limit",
			"COMPLETE at stage 100 denied: latency_p95_ms is 2500, the maximum is 2000",
			1,
		),
	} with input as _input(100, metrics, [{"type": "HOLD"}, _complete(100)])
}

test_fail_missing_metric_counts_as_beyond_limit if {
	metrics := object.remove(_stable, ["consistency"])
	promotion.deny == {_violation(
		"Promotion while a metric is beyond its limit",
		"PROMOTE at stage 5 denied: consistency is null, the minimum is 0.9",
		0,
	)} with input as _input(5, metrics, [_promote(5, 25)])
}

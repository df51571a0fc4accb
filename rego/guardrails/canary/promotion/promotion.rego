# METADATA
# title: Canary promotion
# description: |
#   A canary moves forward one stage at a time (5, 25, 50, 100% of the
#   traffic), completes only at the last one, and never moves forward while a
#   metric is beyond its hard limit (error rate at most 0.01, quality score at
#   least 0.7, latency p95 at most 2000 ms, consistency at least 0.9), whatever
#   thresholds the request set. A missing metric counts as beyond its limit.
#   Rollbacks and holds are never denied.
package guardrails.canary.promotion

import data.guardrails.lib.result

_stages := [5, 25, 50, 100]

_last_stage := 100

_max_limits := {"error_rate": 0.01, "latency_p95_ms": 2000}

_min_limits := {"quality_score": 0.7, "consistency": 0.9}

_forward := {"PROMOTE", "COMPLETE"}

_stage := object.get(input, ["facts", "stage"], null)

_metric(name) := object.get(input, ["facts", "metrics", name], null)

_breaches contains sprintf("%v is %v, the maximum is %v", [name, _metric(name), limit]) if {
	some name, limit in _max_limits
	not _at_most(_metric(name), limit)
}

_breaches contains sprintf("%v is %v, the minimum is %v", [name, _metric(name), limit]) if {
	some name, limit in _min_limits
	not _at_least(_metric(name), limit)
}

_at_most(value, limit) if {
	is_number(value)
	value <= limit
}

_at_least(value, limit) if {
	is_number(value)
	value >= limit
}

_next_stage := min({s | some s in _stages; s > _stage})

# The next stage as text, "none" after the last one.
_next_label := sprintf("%v", [n]) if {
	n := _next_stage
} else := "none"

# METADATA
# title: Promotion while a metric is beyond its limit
# description: A PROMOTE or COMPLETE is proposed although a metric is beyond its hard limit.
# custom:
#   id: CANARY-PROMOTION
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type in _forward
	some breach in _breaches
	message := sprintf("%v at stage %v denied: %v", [action.type, _stage, breach])
}

# METADATA
# title: Promotion skips a stage
# description: A PROMOTE does not go to the stage right after the current one.
# custom:
#   id: CANARY-PROMOTION
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "PROMOTE"
	not action.to_stage == _next_stage
	message := sprintf(
		"PROMOTE from stage %v to %v denied: the next stage is %v",
		[_stage, object.get(action, "to_stage", null), _next_label],
	)
}

# METADATA
# title: Completion before the last stage
# description: A COMPLETE is proposed before the canary reached the last stage.
# custom:
#   id: CANARY-PROMOTION
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "COMPLETE"
	_stage != _last_stage
	message := sprintf("COMPLETE at stage %v denied: only stage %v completes", [_stage, _last_stage])
}

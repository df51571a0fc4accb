# METADATA
# title: SLO floor
# description: |
#   A request may set its own SLO targets, but not below a floor: a looser
#   target shrinks every burn rate and would let deployments go on while the
#   service misses its real objectives. Such a decision is denied, so that
#   deployments halt and a human decides.
package guardrails.error_budget.slo_floor

import data.guardrails.lib.result

_floors := {"availability": 0.95, "quality": 0.9, "consistency": 0.8}

# METADATA
# title: SLO target below floor
# description: An SLO target given with the facts is below the floor for that SLO.
# custom:
#   id: ERROR-BUDGET-SLO-FLOOR
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, null) if {
	some name, floor in _floors
	target := input.facts[name].slo
	is_number(target)
	target < floor
	message := sprintf("%v SLO %v is below the floor %v", [name, target, floor])
}

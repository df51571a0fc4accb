# METADATA
# title: Reassign target
# description: |
#   A REASSIGN must move work to another resource that is an available
#   candidate. A null target is left to the service (no deny).
package guardrails.ops.reassign_target

import data.guardrails.lib.result

_candidate_ids contains c.id if {
	some c in input.facts.candidates
}

_available_ids contains c.id if {
	some c in input.facts.candidates
	c.status == "available"
}

_problem(target) := sprintf("target %v is the current resource", [target]) if {
	target == input.facts.resource.id
} else := sprintf("target %v is not among the candidates", [target]) if {
	not target in _candidate_ids
} else := sprintf("target %v is not available", [target]) if {
	not target in _available_ids
}

# METADATA
# title: Invalid reassign target
# description: The REASSIGN target is the current resource, or not an available candidate.
# custom:
#   id: OPS-REASSIGN-TARGET
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "REASSIGN"
	action.target_id != null
	message := sprintf("REASSIGN denied: %s", [_problem(action.target_id)])
}

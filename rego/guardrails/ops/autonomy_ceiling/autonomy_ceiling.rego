# METADATA
# title: Autonomy ceiling
# description: |
#   Actions above the organisation's maximum autonomy level need human
#   approval. The maximum is data.config.autonomy.orgs[<org_id>], else
#   data.config.autonomy.default_max_level; a missing or malformed maximum
#   counts as L0. Never denies.
package guardrails.ops.autonomy_ceiling

import data.guardrails.lib.result

# "L2" -> 2; undefined for anything that is not L<digits>.
_level(label) := to_number(substring(label, 1, -1)) if {
	is_string(label)
	regex.match(`^L[0-9]+$`, label)
}

_org_key := sprintf("%v", [input.facts.org_id])

_max_label := data.config.autonomy.orgs[_org_key]

_max_label := data.config.autonomy.default_max_level if not data.config.autonomy.orgs[_org_key]

_max_level := n if {
	n := _level(_max_label)
} else := 0

# METADATA
# title: Autonomy above org maximum
# description: The action's autonomy level exceeds the maximum allowed for the organisation.
# custom:
#   id: OPS-AUTONOMY-CEILING
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	_level(action.autonomy) > _max_level
	message := sprintf(
		"%v autonomy %v exceeds the maximum L%v for org %v",
		[action.type, action.autonomy, _max_level, input.facts.org_id],
	)
}

# METADATA
# title: Autonomy level unknown
# description: The action's autonomy level cannot be read, so it cannot be checked against the maximum.
# custom:
#   id: OPS-AUTONOMY-CEILING
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	autonomy := object.get(action, "autonomy", null)
	not _level(autonomy)
	message := sprintf("%v autonomy %v is not a valid level (L<n>)", [action.type, autonomy])
}

# METADATA
# title: Autonomy ceiling
# description: |
#   Actions above the organisation's maximum autonomy level need human
#   approval. The maximum is data.config.autonomy.orgs[<org_id>], else
#   data.config.autonomy.default_max_level; a missing or malformed maximum
#   counts as L0. Never denies.
package guardrails.ops.autonomy_ceiling

import data.guardrails.lib.result

# "L2" -> 2; undefined for anything that is not L<digits>.  The common levels are looked up, the
# rest parsed (a lookup costs a fraction of the parse).
_level(label) := n if {
	n := {"L0": 0, "L1": 1, "L2": 2, "L3": 3, "L4": 4, "L5": 5}[label]
} else := to_number(substring(label, 1, -1)) if {
	is_string(label)
	regex.match(`^L[0-9]+$`, label)
}

# Each computed once per query.  Fields are read one by one: passing a whole document to a
# built-in (object.get(data.config.autonomy, ...)) costs more than the lookups.
_max_label := label if {
	label := data.config.autonomy.orgs[sprintf("%v", [input.facts.org_id])]
} else := data.config.autonomy.default_max_level

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

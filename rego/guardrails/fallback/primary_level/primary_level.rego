# METADATA
# title: Primary level only when the primary works
# description: |
#   A USE_FALLBACK at level 0 sends the request to the primary; it is denied
#   when the facts say the primary failed (primary_ok is not true), whatever
#   the rules proposed.
package guardrails.fallback.primary_level

import data.guardrails.lib.result

# METADATA
# title: Primary used while it fails
# description: A USE_FALLBACK at level 0 is proposed although primary_ok is not true.
# custom:
#   id: FALLBACK-PRIMARY-LEVEL
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "USE_FALLBACK"
	action.level == 0
	object.get(input.facts, "primary_ok", false) != true
	message := sprintf("USE_FALLBACK level 0 (%v) while primary_ok is %v", [action.source, object.get(input.facts, "primary_ok", null)])
}

# METADATA
# title: Release only with a full score
# description: |
#   An APPROVE_RELEASE is denied unless its score is exactly 1: no component
#   goes to production with a required check missing, whatever the rules say.
package guardrails.readiness.full_score

import data.guardrails.lib.result

# METADATA
# title: Release approved below a full score
# description: An APPROVE_RELEASE whose score is not 1 (or is missing).
# custom:
#   id: READINESS-FULL-SCORE
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "APPROVE_RELEASE"
	score := object.get(action, "score", null)
	score != 1
	message := sprintf("APPROVE_RELEASE of %v with score %v: every required check must pass", [action.component, score])
}

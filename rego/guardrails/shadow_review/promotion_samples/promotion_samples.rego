# METADATA
# title: Samples behind a promotion
# description: |
#   A candidate promoted from fewer than 1000 shadow requests needs a person's
#   approval: too few samples for its error rate and similarity to be trusted.
#   Never denies.
package guardrails.shadow_review.promotion_samples

import data.guardrails.lib.result

_min_requests := 1000

# METADATA
# title: Too few samples for a promotion
# description: A PROMOTE_CANDIDATE from fewer than 1000 shadow requests waits for a person.
# custom:
#   id: SHADOW-PROMOTION-SAMPLES
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "PROMOTE_CANDIDATE"
	total := object.get(input.facts, "total_requests", 0)
	total < _min_requests
	message := sprintf(
		"promoting %v after %v shadow requests needs approval (fewer than %v)",
		[action.candidate, total, _min_requests],
	)
}

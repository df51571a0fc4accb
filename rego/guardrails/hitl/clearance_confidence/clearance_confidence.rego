# METADATA
# title: Clearance confidence
# description: |
#   A decision that no human is needed (HITL.NOT_REQUIRED) lets automation carry
#   on alone, so it must be confident: below the minimum, or without a numeric
#   confidence, it is denied and a human is asked instead. Decisions that ask
#   for a human are never blocked.
package guardrails.hitl.clearance_confidence

import data.guardrails.lib.result

_min_confidence := 0.8

_applies if input.proposal.decision_type == "HITL.NOT_REQUIRED"

# null when absent, so that a missing confidence can be detected.
_confidence := object.get(input, ["proposal", "confidence"], null)

# METADATA
# title: Clearance below minimum confidence
# description: No human is deemed needed, but the confidence is below the minimum for acting alone.
# custom:
#   id: HITL-CLEARANCE-CONFIDENCE
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, null) if {
	_applies
	is_number(_confidence)
	_confidence < _min_confidence
	message := sprintf("no human deemed needed with confidence %v, below the minimum %v", [_confidence, _min_confidence])
}

# METADATA
# title: Clearance confidence missing
# description: No human is deemed needed, but the proposal carries no numeric confidence.
# custom:
#   id: HITL-CLEARANCE-CONFIDENCE
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, null) if {
	_applies
	not is_number(_confidence)
	message := sprintf("no human deemed needed without a numeric confidence; the minimum is %v", [_min_confidence])
}

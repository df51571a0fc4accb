# METADATA
# title: Minimum confidence
# description: |
#   Blocks proposals whose confidence is below the minimum. Escalations to a
#   human (OPS.ESCALATE) are never blocked.
package guardrails.ops.min_confidence

import data.guardrails.lib.result

_min_confidence := 0.6

# Fields read one by one (object.get(input, ...) costs more than the checks); `not` of a rule, as a call
# on a missing field is undefined even under `not`: a missing type or confidence is not exempt/numeric.
_exempt if input.proposal.decision_type in {"OPS.ESCALATE"}

_applies if not _exempt
_numeric if is_number(input.proposal.confidence)

# METADATA
# title: Confidence below minimum
# description: The proposal's confidence is below the minimum required to act.
# custom:
#   id: OPS-MIN-CONFIDENCE
#   severity: medium
deny contains result.fail(rego.metadata.chain(), message, null) if {
	confidence := input.proposal.confidence
	is_number(confidence)
	confidence < _min_confidence
	_applies
	message := sprintf("confidence %v is below the minimum %v", [confidence, _min_confidence])
}

# METADATA
# title: Confidence missing
# description: The proposal carries no numeric confidence, so it cannot be checked.
# custom:
#   id: OPS-MIN-CONFIDENCE
#   severity: medium
deny contains result.fail(rego.metadata.chain(), message, null) if {
	not _numeric
	_applies
	message := sprintf("confidence is missing or not a number; the minimum is %v", [_min_confidence])
}

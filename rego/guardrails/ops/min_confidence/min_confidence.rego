# METADATA
# title: Minimum confidence
# description: |
#   Blocks proposals whose confidence is below the minimum. Escalations to a
#   human (OPS.ESCALATE) are never blocked.
package guardrails.ops.min_confidence

import data.guardrails.lib.result

_min_confidence := 0.6

_exempt_decision_types := {"OPS.ESCALATE"}

_applies if not object.get(input, ["proposal", "decision_type"], null) in _exempt_decision_types

# null when absent, so that a missing confidence can be detected.
_confidence := object.get(input, ["proposal", "confidence"], null)

# METADATA
# title: Confidence below minimum
# description: The proposal's confidence is below the minimum required to act.
# custom:
#   id: OPS-MIN-CONFIDENCE
#   severity: medium
deny contains result.fail(rego.metadata.chain(), message, null) if {
	_applies
	is_number(_confidence)
	_confidence < _min_confidence
	message := sprintf("confidence %v is below the minimum %v", [_confidence, _min_confidence])
}

# METADATA
# title: Confidence missing
# description: The proposal carries no numeric confidence, so it cannot be checked.
# custom:
#   id: OPS-MIN-CONFIDENCE
#   severity: medium
deny contains result.fail(rego.metadata.chain(), message, null) if {
	_applies
	not is_number(_confidence)
	message := sprintf("confidence is missing or not a number; the minimum is %v", [_min_confidence])
}

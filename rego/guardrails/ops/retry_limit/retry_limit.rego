# METADATA
# title: Retry limit
# description: Blocks RETRY actions once the process has used up its attempts.
package guardrails.ops.retry_limit

import data.guardrails.lib.result

_max_attempts := 3

# METADATA
# title: Retry limit reached
# description: A RETRY is proposed although the process already reached the attempt limit.
# custom:
#   id: OPS-RETRY-LIMIT
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "RETRY"
	attempts := input.facts.process.attempts
	attempts >= _max_attempts
	message := sprintf("RETRY denied: attempts %v >= limit %v", [attempts, _max_attempts])
}

# METADATA
# title: Consistent breaker state
# description: |
#   A breaker reported closed with at least as many failures as the failure
#   threshold (5) is inconsistent: it should have tripped. No call or probe is
#   let through on its word.
package guardrails.ai_breaker.consistent_state

import data.guardrails.lib.result

_failure_threshold := 5

_allowing := {"ALLOW_CALL", "ALLOW_PROBE"}

# METADATA
# title: Call allowed by an inconsistent breaker
# description: An ALLOW_CALL or ALLOW_PROBE while the state is closed with failures at or above the threshold.
# custom:
#   id: AI-BREAKER-CONSISTENT-STATE
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type in _allowing
	input.facts.state == "closed"
	input.facts.failures >= _failure_threshold
	message := sprintf(
		"%v while closed with %v failures (threshold %v): the breaker should be open",
		[action.type, input.facts.failures, _failure_threshold],
	)
}

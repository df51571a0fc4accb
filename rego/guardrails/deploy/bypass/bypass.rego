# METADATA
# title: Bypass only for security hotfixes
# description: |
#   Skipping the staged rollout and its gates is allowed for a security hotfix
#   only. A proposed DEPLOY that bypasses for any other scenario is denied, and
#   so is a request asking for a bypass outside a hotfix, even when the
#   proposal dropped it: the caller's intent is for a human to judge.
package guardrails.deploy.bypass

import data.guardrails.lib.result

_bypass_scenario := "security_hotfix"

_scenario := object.get(input, ["facts", "scenario"], null)

_outside_hotfix if _scenario != _bypass_scenario

_proposed_bypass contains i if {
	some i, action in input.proposal.actions
	action.type == "DEPLOY"
	action.bypass == true
}

# METADATA
# title: Bypass proposed outside a security hotfix
# description: A DEPLOY action bypasses the staged rollout for a scenario other than a security hotfix.
# custom:
#   id: DEPLOY-BYPASS
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, i) if {
	_outside_hotfix
	some i in _proposed_bypass
	message := sprintf("DEPLOY with bypass denied: scenario %v is not %v", [_scenario, _bypass_scenario])
}

# METADATA
# title: Bypass requested outside a security hotfix
# description: The request asks to bypass the staged rollout for a scenario other than a security hotfix.
# custom:
#   id: DEPLOY-BYPASS
#   severity: high
deny contains result.fail(rego.metadata.chain(), message, null) if {
	_outside_hotfix
	input.facts.bypass_requested == true
	count(_proposed_bypass) == 0
	message := sprintf("bypass requested for scenario %v; only %v may bypass", [_scenario, _bypass_scenario])
}

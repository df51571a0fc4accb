# METADATA
# title: Human approval for deployments
# description: |
#   The deployment steps a person must approve before they run: generated
#   code always; a new model rolled out above 25% of the traffic; a prompt
#   update whose drift exceeds 5% or was not measured. Checked from the facts,
#   whatever the plan says. Never denies.
package guardrails.deploy.human_approval

import data.guardrails.lib.result

_new_model_max_pct := 25

_max_prompt_drift := 0.05

_deploys contains i if {
	some i, action in input.proposal.actions
	action.type == "DEPLOY"
}

# METADATA
# title: Generated code needs a human
# description: Generated code is never deployed without a person signing off.
# custom:
#   id: DEPLOY-HUMAN-APPROVAL
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	input.facts.scenario == "generated_code"
	some i in _deploys
	message := sprintf("generated code %v of %v needs a human sign-off", [input.facts.version, input.facts.component])
}

# METADATA
# title: New model above the approval threshold
# description: A new model rolled out to more than 25% of the traffic needs approval.
# custom:
#   id: DEPLOY-HUMAN-APPROVAL
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	input.facts.scenario == "new_model"
	pct := object.get(input.facts, "traffic_pct", 0)
	pct > _new_model_max_pct
	some i in _deploys
	message := sprintf("new model at %v%% of the traffic needs approval above %v%%", [pct, _new_model_max_pct])
}

# METADATA
# title: Prompt drift needs a review
# description: A prompt update whose output drift exceeds 5%, or was not measured, is reviewed first.
# custom:
#   id: DEPLOY-HUMAN-APPROVAL
#   severity: medium
approval contains result.fail(rego.metadata.chain(), message, i) if {
	input.facts.scenario == "prompt_update"
	drift := object.get(input.facts, "drift", null)
	not _drift_within(drift)
	some i in _deploys
	message := sprintf("prompt drift %v is not within %v: review before the A/B test", [drift, _max_prompt_drift])
}

_drift_within(drift) if {
	is_number(drift)
	drift <= _max_prompt_drift
}

# METADATA
# title: Rollback of a production component
# description: |
#   Rolling back a component that serves production for its organisation
#   needs a person's approval. The production components are listed per
#   organisation in data.config.production.orgs[<org_id>]; a component not
#   listed there, or an organisation without a list, rolls back on its own.
#   Never denies.
package guardrails.drift.production_rollback

import data.guardrails.lib.result

_org_key := sprintf("%v", [input.facts.org_id])

_production contains component if {
	some component in data.config.production.orgs[_org_key]
}

# METADATA
# title: Production rollback needs approval
# description: A ROLLBACK of one of the organisation's production components waits for a person.
# custom:
#   id: DRIFT-PRODUCTION-ROLLBACK
#   severity: high
approval contains result.fail(rego.metadata.chain(), message, i) if {
	some i, action in input.proposal.actions
	action.type == "ROLLBACK"
	action.component in _production
	message := sprintf(
		"ROLLBACK of production component %v (org %v) at drift score %v needs approval",
		[action.component, input.facts.org_id, action.drift_score],
	)
}

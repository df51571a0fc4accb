# METADATA
# title: Guardrails entrypoint
# description: |
#   Evaluates every policy of the ruleset named in input.ruleset.name, i.e. each
#   package data.guardrails.<ruleset>.<policy>, collecting its `deny` set into
#   violations and its `approval` set into approvals. A new policy, or the
#   policies of a new ruleset, need no change here. An unknown ruleset yields
#   an allow. This package lives outside data.guardrails so that the dynamic
#   lookup below does not depend on itself.
#
#   opsgate asks for `decision` only: it groups concurrent items itself, with a query
#   of its own over `decision`, and checks every reload against the contract in
#   service/adapters/opa/entrypoint_contract_test.rego (docs/authoring.md).
package opsgate

_violations contains v if {
	some v in data.guardrails[input.ruleset.name][_].deny
}

_approvals contains a if {
	some a in data.guardrails[input.ruleset.name][_].approval
}

# Deterministic order: policy, then action_index (null first), then message.
_sorted(results) := [r[3] | some r in sort([[x.policy, x.action_index, x.message, x] | some x in results])]

# METADATA
# title: Violations
# description: Every deny result of the ruleset's policies, sorted.
violations := _sorted(_violations)

# METADATA
# title: Approvals
# description: Every approval result of the ruleset's policies, sorted.
approvals := _sorted(_approvals)

# METADATA
# title: Decision
# description: |
#   The verdict for one item (ruleset, facts, proposal).  When no policy denies or asks
#   approval (most decisions), a constant allow, with nothing sorted or built.
decision := {
	"allow": count(violations) == 0,
	"violations": violations,
	"requires_approval": count(approvals) > 0,
	"approvals": approvals,
} if {
	count(_violations) + count(_approvals) > 0
} else := {"allow": true, "violations": [], "requires_approval": false, "approvals": []}

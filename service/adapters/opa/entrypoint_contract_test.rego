# METADATA
# title: The guardrails entrypoint's contract
# description: |
#   Run by opsgate beside the policies' own tests whenever a version is loaded by a reload, rollback,
#   activate or serve --watch: an entrypoint (data.opsgate.decision) that fails any of these is refused,
#   whether or not rego/ still has tests of its own.  The policies are replaced by stand-ins, so the
#   contract holds for any set of policies: the verdict carries all four fields, every deny of the
#   ruleset's policies denies and is listed, every approval requires approval and is listed.
package opsgate_entrypoint_contract_test

import data.opsgate

_input := {"ruleset": {"name": "contract", "version": "v"}, "facts": {}, "proposal": {"actions": []}}

_deny := {
	"policy": "contract.deny",
	"id": "CONTRACT-DENY",
	"rule": "data.guardrails.contract.deny.deny",
	"title": "A stand-in deny",
	"message": "denied by the contract's stand-in policy",
	"severity": "high",
	"action_index": null,
}

_approval := {
	"policy": "contract.approval",
	"id": "CONTRACT-APPROVAL",
	"rule": "data.guardrails.contract.approval.approval",
	"title": "A stand-in approval",
	"message": "approval asked by the contract's stand-in policy",
	"severity": "medium",
	"action_index": 0,
}

_quiet := {"deny": set(), "approval": set()}

test_success_nothing_denied_or_to_approve_allows if {
	opsgate.decision == {"allow": true, "violations": [], "requires_approval": false, "approvals": []} with input as _input
		with data.guardrails as {"contract": {"quiet": _quiet}}
}

test_fail_a_deny_denies_and_is_listed if {
	opsgate.decision == {"allow": false, "violations": [_deny], "requires_approval": false, "approvals": []} with input as _input
		with data.guardrails as {"contract": {"quiet": _quiet, "deny": {"deny": {_deny}, "approval": set()}}}
}

test_success_an_approval_requires_approval_and_is_listed if {
	opsgate.decision == {"allow": true, "violations": [], "requires_approval": true, "approvals": [_approval]} with input as _input
		with data.guardrails as {"contract": {"quiet": _quiet, "approval": {"deny": set(), "approval": {_approval}}}}
}

test_fail_denies_and_approvals_of_several_policies_are_all_carried if {
	second := object.union(_deny, {"policy": "contract.other", "message": "denied again", "action_index": 1})
	policies := {
		"deny": {"deny": {_deny}, "approval": set()},
		"other": {"deny": {second}, "approval": {_approval}},
	}
	verdict := opsgate.decision with input as _input with data.guardrails as {"contract": policies}
	verdict.allow == false
	count(verdict.violations) == 2
	_deny in verdict.violations
	second in verdict.violations
	verdict.requires_approval == true
	verdict.approvals == [_approval]
}

test_fail_only_the_named_rulesets_policies_count if {
	opsgate.decision == {"allow": true, "violations": [], "requires_approval": false, "approvals": []} with input as _input
		with data.guardrails as {"contract": {"quiet": _quiet}, "elsewhere": {"deny": {"deny": {_deny}, "approval": {_approval}}}}
}

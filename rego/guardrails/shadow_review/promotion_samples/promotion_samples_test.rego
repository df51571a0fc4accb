package guardrails.shadow_review.promotion_samples_test

import data.guardrails.shadow_review.promotion_samples

_promote := {"type": "PROMOTE_CANDIDATE", "autonomy": "L2", "component": "support-bot", "candidate": "model-v2"}

_input(total, actions) := {
	"facts": {"org_id": 0, "component": "support-bot", "candidate": "model-v2", "total_requests": total, "errors": 0},
	"proposal": {"decision_type": "SHADOW.APPROVE", "confidence": 0.9, "actions": actions},
}

_approval(message, action_index) := {
	"policy": "shadow_review.promotion_samples",
	"id": "SHADOW-PROMOTION-SAMPLES",
	"rule": "data.guardrails.shadow_review.promotion_samples.approval",
	"title": "Too few samples for a promotion",
	"message": message,
	"severity": "medium",
	"action_index": action_index,
}

test_success_promotion_at_1000_requests if {
	count(promotion_samples.approval) == 0 with input as _input(1000, [_promote])
}

test_success_few_requests_without_promotion if {
	count(promotion_samples.approval) == 0 with input as _input(10, [{"type": "REQUEST_REVIEW"}])
}

test_fail_promotion_below_1000_requests if {
	promotion_samples.approval == {_approval("promoting model-v2 after 999 shadow requests needs approval (fewer than 1000)", 1)} with input as _input(999, [{"type": "NOTIFY"}, _promote])
}

test_fail_promotion_without_a_count if {
	promotion_samples.approval == {_approval("promoting model-v2 after 0 shadow requests needs approval (fewer than 1000)", 0)} with input as {"facts": {}, "proposal": {"actions": [_promote]}}
}

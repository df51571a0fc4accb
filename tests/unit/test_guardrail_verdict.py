"""The entrypoint's verdict decoded strictly: anything but the four typed, consistent fields is a reason."""

from __future__ import annotations

from typing import Any

import pytest

from service.adapters.opa.guardrails import NO_RESULT, decode_verdict

RESULT = {
    "policy": "ops.min_confidence", "id": "OPS-MIN-CONFIDENCE", "rule": "data.guardrails.ops.min_confidence.deny",
    "title": "Confidence below minimum", "message": "too low", "severity": "medium", "action_index": None,
}  # fmt: skip
ALLOW: dict[str, Any] = {"allow": True, "violations": [], "requires_approval": False, "approvals": []}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, NO_RESULT),
        ({"allow": True}, "malformed guardrail verdict: Object missing required field `violations`"),
        ({**ALLOW, "approvals": None}, "malformed guardrail verdict: Expected `array`, got `null` - at `$.approvals`"),
        ({**ALLOW, "allow": 1}, "malformed guardrail verdict: Expected `bool`, got `int` - at `$.allow`"),
        ({**ALLOW, "requires_approval": "false"},
         "malformed guardrail verdict: Expected `bool`, got `str` - at `$.requires_approval`"),
        ({**ALLOW, "approve": True}, "malformed guardrail verdict: Object contains unknown field `approve`"),
        ({**ALLOW, "allow": False, "violations": [{**RESULT, "severity": 3}]},
         "malformed guardrail verdict: Expected `str`, got `int` - at `$.violations[0].severity`"),
        ([ALLOW], "malformed guardrail verdict: Expected `object`, got `array`"),
        ({**ALLOW, "violations": [RESULT]},
         "inconsistent guardrail verdict: `allow` is true with 1 item(s) in `violations`"),
        ({**ALLOW, "allow": False}, "inconsistent guardrail verdict: `allow` is false with 0 item(s) in `violations`"),
        ({**ALLOW, "approvals": [RESULT, RESULT]},
         "inconsistent guardrail verdict: `requires_approval` is false with 2 item(s) in `approvals`"),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_a_complete_consistent_verdict_is_a_reason_naming_the_field(
    answer: Any, reason: str
) -> None:
    assert decode_verdict(answer) == reason


@pytest.mark.parametrize(
    "answer",
    [
        ALLOW,
        {"allow": False, "violations": [RESULT], "requires_approval": False, "approvals": []},
        {"allow": True, "violations": [], "requires_approval": True, "approvals": [RESULT]},
        {"allow": True, "violations": [], "requires_approval": True, "approvals": []},  # held, reason unstated
    ],
)
def test_a_complete_consistent_verdict_decodes(answer: dict[str, Any]) -> None:
    decoded = decode_verdict(answer)
    assert not isinstance(decoded, str)
    assert (decoded.allow, len(decoded.violations), decoded.requires_approval, len(decoded.approvals)) == (
        answer["allow"], len(answer["violations"]), answer["requires_approval"], len(answer["approvals"])
    )  # fmt: skip

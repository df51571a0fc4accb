"""Where a decision's actions stand, from its history (pure logic): the decision page says "not executed"
for the states that hold them back."""

from __future__ import annotations

import pytest

from service.usecases.status import Step, actions_state


def step(event: str, status: str) -> Step:
    return Step(event, status, "2026-11-21T10:00:00.000000+00:00", "bob", "", 1, "h")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([("decided", "APPROVED")], "APPROVED", id="approved"),
        pytest.param([("decided", "APPROVED"), ("outcome", "FAILED")], "APPROVED", id="approved-then-failed"),
        pytest.param([("decided", "ESCALATED")], "ESCALATED", id="escalated"),
        pytest.param([("decided", "PENDING_APPROVAL")], "PENDING_APPROVAL", id="waiting"),
        pytest.param([("decided", "PENDING_APPROVAL"), ("approved", "EXECUTED"), ("outcome", "SUCCEEDED")],
                     "EXECUTED", id="executed-then-succeeded"),  # fmt: skip
        pytest.param([("decided", "PENDING_APPROVAL"), ("rejected", "REJECTED")], "REJECTED", id="rejected"),
        pytest.param([("decided", "PENDING_APPROVAL"), ("expired", "EXPIRED")], "EXPIRED", id="expired"),
        pytest.param([], "unknown", id="no-history"),
    ],
)
def test_the_state_of_the_actions_leaves_outcomes_aside(steps: list[tuple[str, str]], expected: str) -> None:
    assert actions_state([step(event, status) for event, status in steps]) == expected

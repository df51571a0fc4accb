"""Constant folding: params become their values, constant arithmetic is computed, the rest stays."""

from __future__ import annotations

import pytest

from service.domain import expr
from service.domain.fold import fold_params
from service.errors import ExpressionError

PARAMS = {"max_attempts": 3, "factor": 2.5, "zero": 0}


@pytest.mark.parametrize(
    ("source", "folded"),
    [
        ("process.attempts >= params.max_attempts", "process.attempts >= 3"),
        ("x > params.max_attempts * 2", "x > 6"),
        ("x > params.factor * params.max_attempts", "x > 7.5"),
        ("x > -params.max_attempts", "x > -3"),
        ("len(items) > params.max_attempts - 1", "len(items) > 2"),
        ("x in [params.max_attempts, 4]", "x in [3, 4]"),
        ("a > 1 and b < params.max_attempts", "a > 1 and b < 3"),
        ("x + 1 > y", "x + 1 > y"),
        ("params.unknown == null", "true"),
    ],
)
def test_params_become_their_values_and_constant_arithmetic_is_computed(source: str, folded: str) -> None:
    assert expr.render(fold_params(expr.parse(source), PARAMS)) == folded


def test_a_constant_that_cannot_be_computed_raises_at_its_offset() -> None:
    source = "history.failures > 1 / params.zero"
    with pytest.raises(ExpressionError) as raised:
        fold_params(expr.parse(source), PARAMS)
    assert raised.value.reason == "division by zero"
    assert source[raised.value.offset :] == "1 / params.zero"

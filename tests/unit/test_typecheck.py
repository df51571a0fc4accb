"""Type mismatches between expressions and the declared fact schema (pure logic)."""

from __future__ import annotations

import pytest

from service.domain import expr
from service.domain.expr.typecheck import type_mismatches
from service.domain.schema import FieldSpec

FACTS = {
    "n": FieldSpec("int"),
    "ratio": FieldSpec("number", required=False),
    "name": FieldSpec("str"),
    "flag": FieldSpec("bool"),
    "tags": FieldSpec("list", items=FieldSpec("str")),
    "obj": FieldSpec("object", fields={"count": FieldSpec("int"), "label": FieldSpec("str")}),
}
PARAMS = {"limit": 3, "label": "x", "on": True}


def mismatches(text: str) -> list[tuple[int, str]]:
    return type_mismatches(expr.parse(text), FACTS, PARAMS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('n >= "3"', [(5, "type mismatch: 'n' is number, compared with str (never true)")]),
        ("obj.label == params.limit", [(13, "type mismatch: 'obj.label' is str, compared with number (never true)")]),
        ("name != 1", [(8, "type mismatch: 'name' is str, compared with number (always true)")]),
        ("flag == 1", [(8, "type mismatch: 'flag' is bool, compared with number (never true)")]),
        ("flag > params.on", [(0, "type mismatch: '>' cannot order values of type bool")]),
        ("name * 2 > 1", [(0, "type mismatch: '*' needs numbers, 'name' is str")]),
        ("obj.count + params.label", [(12, "type mismatch: '+' needs numbers, 'params.label' is str")]),
        ("-name", [(1, "type mismatch: '-' needs numbers, 'name' is str")]),
        ("1 in n", [(5, "type mismatch: 'in' needs a list or a string on its right, got number")]),
        ("str(n) == 3", [(10, "type mismatch: str(n) is str, compared with number (never true)")]),
    ],
)
def test_a_certain_mismatch_is_reported_at_the_offending_operand(text: str, expected: list[tuple[int, str]]) -> None:
    assert mismatches(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "n >= params.limit and ratio < 0.5",
        'name == "a" and obj.label != params.label',
        "ratio == null and flag == params.on",
        '"a" in tags and name in ["a", "b"] and "x" in name',
        'name + "-" + obj.label == "a-b"',
        "len(tags) > n and max(n, obj.count) >= 2",
        'first(filter(tags, item == "a")) == "a"',
        "first(tags) == 1",  # the item type is not tracked: unknown is never a mismatch
    ],
)
def test_well_typed_or_unknown_expressions_pass(text: str) -> None:
    assert mismatches(text) == []

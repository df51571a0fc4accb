"""Conditions compiled to durable_rules JSON, and what falls back to derived booleans."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.adapters.rules_engine.compile import Compiled, compile_condition, exact
from service.domain import expr

PARAMS = {"max_attempts": 3, "max_failures": 3}


def compiled(source: str, prefix: str = "r0_") -> Compiled:
    return compile_condition(expr.parse(source), PARAMS, prefix)


def as_json(value: Any) -> str:
    """Exact JSON text, so that ``True`` and ``1`` or ``3`` and ``3.0`` stay different."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("process.attempts >= params.max_attempts", {"$gte": {"f.process.attempts": 3}}),
        (
            'resource.status != "available" or resource.capacity == 0',
            {"$or": [{"$neq": {"f.resource.status": "available"}}, {"f.resource.capacity": 0}]},
        ),
        ("true", {"$gte": {"n": 0}}),
        ("3 <= process.attempts", {"$gte": {"f.process.attempts": 3}}),
        ("3 > process.attempts", {"$lt": {"f.process.attempts": 3}}),
        ("not (a > 1)", {"$lte": {"f.a": 1}}),
        ("not (a == 1)", {"$neq": {"f.a": 1}}),
        ("not (a > 1 or b == 'x')", {"$and": [{"$lte": {"f.a": 1}}, {"$neq": {"f.b": "x"}}]}),
        ('x in ["a", "b"]', {"$or": [{"f.x": "a"}, {"f.x": "b"}]}),
        ('x not in ["a", "b"]', {"$and": [{"$neq": {"f.x": "a"}}, {"$neq": {"f.x": "b"}}]}),
        ('not (x in ["a", "b"])', {"$and": [{"$neq": {"f.x": "a"}}, {"$neq": {"f.x": "b"}}]}),
        ("a.b == c.d", {"f.a.b": {"$m": "f.c.d"}}),
        ("x < y", {"$lt": {"f.x": {"$m": "f.y"}}}),
        ("x > params.max_attempts * 2", {"$gt": {"f.x": 6}}),
        ("x == -1", {"f.x": -1}),
        ("x <= 2.5", {"$lte": {"f.x": 2.5}}),
        ("x <= 1e-6", {"$lte": {"f.x": 1e-6}}),
        ("x >= 9007199254740992", {"$gte": {"f.x": 2**53}}),
        ("x >= -9007199254740992", {"$gte": {"f.x": -(2**53)}}),
        ("resource.ready", {"f.resource.ready": True}),
        ("not resource.ready", {"f.resource.ready": False}),
        (
            "a > 1 and (b < 2 or c == true)",
            {"$and": [{"$gt": {"f.a": 1}}, {"$or": [{"$lt": {"f.b": 2}}, {"f.c": True}]}]},
        ),
    ],
)
def test_native_conditions_compile_to_exact_durable_rules_json(source: str, expected: dict[str, Any]) -> None:
    result = compiled(source)
    assert as_json(result.condition) == as_json(expected)
    assert result.derived == ()


def test_a_function_call_becomes_one_derived_boolean() -> None:
    result = compiled("len(candidates) > 0", prefix="r0_")
    assert as_json(result.condition) == as_json({"d.r0_0": True})
    assert [(key, expr.render(node)) for key, node in result.derived] == [("r0_0", "len(candidates) > 0")]


def test_derived_keys_are_numbered_in_order_under_the_rule_prefix() -> None:
    result = compiled("a > 1 and len(c) > 0 or x % 2 == 0", prefix="r4_")
    assert as_json(result.condition) == as_json(
        {"$or": [{"$and": [{"$gt": {"f.a": 1}}, {"d.r4_0": True}]}, {"d.r4_1": True}]}
    )
    assert [(key, expr.render(node)) for key, node in result.derived] == [
        ("r4_0", "len(c) > 0"),
        ("r4_1", "x % 2 == 0"),
    ]


@pytest.mark.parametrize(
    ("source", "derived_text"),
    [
        ("false", "false"),
        ("x == null", "x == null"),
        ("x in []", "x in []"),
        ("x in [a, b]", "x in [a, b]"),
        ("x ** 2 > 4", "x ** 2 > 4"),
        ("x + 1 > 3", "x + 1 > 3"),
        # durable_rules divides integers as integers, lets products wrap at 64 bits and compares
        # an integer with a double as a double: arithmetic is derived
        ("history.latency > process.sla * 1000", "history.latency > process.sla * 1000"),
        ("x + 1 > y", "x + 1 > y"),
        ("x >= y / 2", "x >= y / 2"),
        ("x < y - 1", "x < y - 1"),
        # integers beyond 2**53 are not exact as doubles; JSON has no infinity
        ("x < 9007199254740993", "x < 9007199254740993"),
        ("x > -9007199254740993", "x > -9007199254740993"),
        ("x in [1, 9007199254740993]", "x in [1, 9007199254740993]"),
        ("x < 1e308 * 10", "x < inf"),
    ],
)
def test_what_durable_rules_cannot_match_is_derived(source: str, derived_text: str) -> None:
    result = compiled(source)
    assert as_json(result.condition) == as_json({"d.r0_0": True})
    assert [(key, expr.render(node)) for key, node in result.derived] == [("r0_0", derived_text)]


def test_a_negated_derived_condition_keeps_the_negation_in_python() -> None:
    result = compiled("not (len(candidates) > 0)")
    assert as_json(result.condition) == as_json({"d.r0_0": True})
    [(key, node)] = result.derived
    assert key == "r0_0"
    assert expr.evaluate(node, {"candidates": []}) is True
    assert expr.evaluate(node, {"candidates": [{"id": "w-1"}]}) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1e-6, "b": [5e-324, 1e308], "c": "x", "d": None, "e": True}, True),
        ({"a": {"b": [2**53, -(2**53)]}}, True),
        ({"a": {"b": [2**53 + 1]}}, False),
        ({"a": -(2**53) - 1}, False),
        ({"a": (1, 2**64)}, False),
        ([float("inf")], False),
        (float("nan"), False),
    ],
)
def test_exact_finds_any_number_durable_rules_cannot_compare_exactly(value: Any, expected: bool) -> None:
    assert exact(value) is expected

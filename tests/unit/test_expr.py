"""The expression language: parsing, evaluation and rendering."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from service.domain import expr
from service.domain.expr import Binary, BoolOp, Literal, Path, Unary
from service.errors import ExpressionError


def value_of(source: str, scope: dict[str, Any] | None = None) -> Any:
    return expr.evaluate(expr.parse(source), scope or {})


def shape(value: Any) -> Any:
    """A tree as plain data without source offsets, to compare trees parsed from different text."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "pos"}
    if isinstance(value, (list, tuple)):
        return [shape(v) for v in value]
    return value


CANDIDATES = [
    {"id": "w-3", "capacity": 5, "status": "available"},
    {"id": "w-2", "capacity": 9, "status": "offline"},
    {"id": "w-4", "capacity": 5, "status": "available"},
    {"id": "w-1", "capacity": 0, "status": "available"},
]

SCOPE: dict[str, Any] = {
    "process": {"attempts": 2, "sla": 60, "zero": 0},
    "resource": {"id": "w-1", "status": None},
    "candidates": CANDIDATES,
    "params": {"base": 30, "cap": 900},
}


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3 ** 2", 19),
        ("2 ** 3 ** 2", 512),
        ("10 - 4 - 3", 3),
        ("(1 + 2) * 3", 9),
        ("-2 ** 2", -4),
        ("2 ** -1", 0.5),
        ("7 % 4 * 2", 6),
        ("1 + 2 == 3 and 2 > 1", True),
        ("true or false and false", True),
        ("not false and false", False),
        ("not (false and false)", True),
        ("1.5e1 + .5", 15.5),
    ],
)
def test_operators_bind_by_precedence(source: str, expected: Any) -> None:
    result = value_of(source)
    assert (result, type(result)) == (expected, type(expected))


def test_not_binds_looser_than_comparison_but_tighter_than_and() -> None:
    assert expr.parse("not a and b") == BoolOp(0, "and", (Unary(0, "not", Path(4, ("a",))), Path(10, ("b",))))
    assert expr.parse("not a == b") == Unary(0, "not", Binary(4, "==", Path(4, ("a",)), Path(9, ("b",))))


def test_unary_minus_applies_to_the_whole_power() -> None:
    assert expr.parse("-x ** 2") == Unary(0, "-", Binary(1, "**", Path(1, ("x",)), Literal(6, 2)))
    assert value_of("-x ** 2", {"x": 3}) == -9


def test_dotted_names_parse_into_one_path() -> None:
    assert expr.parse("process.attempts") == Path(0, ("process", "attempts"))


def test_number_literals_keep_int_and_float_apart() -> None:
    assert [msgspec.to_builtins(expr.parse(text)) for text in ("3", "3.0", "3e2")] == [
        {"kind": "literal", "pos": 0, "value": 3},
        {"kind": "literal", "pos": 0, "value": 3.0},
        {"kind": "literal", "pos": 0, "value": 300.0},
    ]
    assert [type(expr.evaluate(expr.parse(text), {})) for text in ("3", "3.0", "3e2")] == [int, float, float]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"b" in ["a", "b"]', True),
        ('"c" in ["a", "b"]', False),
        ('"c" not in ["a", "b"]', True),
        ('"b" not in ["a", "b"]', False),
        ('"at" in "cat"', True),
        ('"id" in resource', True),
        ("1 in nothing", False),
        ("1 not in nothing", True),
        ("process.attempts in [1, 2, 3]", True),
    ],
)
def test_membership_checks_lists_strings_and_objects(source: str, expected: bool) -> None:
    assert value_of(source, SCOPE) is expected


@pytest.mark.parametrize("source", ["1 < x < 3", "a == b != c", "a in b in c"])
def test_chained_comparisons_are_rejected(source: str) -> None:
    with pytest.raises(ExpressionError, match="comparisons cannot be chained; join them with 'and'"):
        expr.parse(source)


@pytest.mark.parametrize(
    ("source", "offset", "reason"),
    [
        ("process.attempts >=", 19, "expected a value, found end of expression"),
        ("a $ b", 2, "unexpected character '$'"),
        ("a b", 2, "unexpected 'b'"),
        ("(a + 1", 6, "expected ')', found end of expression"),
        ("f(a, b", 6, "expected ',', found end of expression"),
        ("x and", 5, "expected a value, found end of expression"),
        ("1 + or", 4, "expected a value, found 'or'"),
        ("a.", 2, "expected a field name after '.'"),
        ("'open", 0, 'unexpected character "\'"'),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
    ],
)
def test_parse_errors_point_at_the_offending_offset(source: str, offset: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        expr.parse(source)
    assert (caught.value.offset, caught.value.reason) == (offset, reason)


def test_an_unknown_function_parses_but_fails_to_evaluate_at_its_offset() -> None:
    node = expr.parse("1 + foo(2)")
    with pytest.raises(ExpressionError) as caught:
        expr.evaluate(node, {})
    assert (caught.value.offset, caught.value.reason) == (4, "unknown function 'foo'")


def test_paths_and_calls_are_listed_in_source_order() -> None:
    node = expr.parse("a.b > params.x and len(filter(c, item.ok)) > min(1, d)")
    assert [p.dotted for p in expr.paths(node)] == ["a.b", "params.x", "c", "item.ok", "d"]
    assert sorted(call.name for call in expr.calls(node)) == ["filter", "len", "min"]


# --- evaluation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("process.missing", None),
        ("nothing.at.all", None),
        ("process.attempts.deeper", None),
        ("resource.status == null", True),
        ("resource.status != null", False),
        ("process.missing != 1", True),
        ("process.missing > 0", False),
        ("process.missing < 0", False),
        ("process.missing >= 0", False),
        ("process.missing <= 0", False),
        ("0 < process.missing", False),
        ("process.missing + 1", None),
        ("-process.missing", None),
        ("not process.missing", True),
    ],
)
def test_missing_paths_are_null_and_never_order(source: str, expected: Any) -> None:
    assert value_of(source, SCOPE) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"a" < 1', False),
        ("true > 0", False),
        ("true > false", True),
        ('"abc" < "abd"', True),
        ("2 >= 2.0", True),
    ],
)
def test_ordering_only_holds_between_comparable_values(source: str, expected: bool) -> None:
    assert value_of(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"attempts " + str(process.attempts)', "attempts 2"),
        ('"sla=" + str(process.sla / 60)', "sla=1"),
        ("str(2.5)", "2.5"),
        ("str(true) + str(false)", "truefalse"),
        ("str(null)", "null"),
        ('"say \\"hi\\""', 'say "hi"'),
    ],
)
def test_strings_concatenate_with_str(source: str, expected: str) -> None:
    assert value_of(source, SCOPE) == expected


def test_adding_a_number_to_a_string_is_an_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        value_of('"a" + 1')
    assert caught.value.reason == "'+' needs numbers, got str and int"


@pytest.mark.parametrize(
    ("source", "expected_ids"),
    [
        ('filter(candidates, item.status == "available" and item.capacity > 0)', ["w-3", "w-4"]),
        ("filter(candidates, item.capacity > 100)", []),
        ("sort(candidates, -item.capacity, item.id)", ["w-2", "w-3", "w-4", "w-1"]),
        ("sort(candidates, item.id)", ["w-1", "w-2", "w-3", "w-4"]),
        ("filter(nothing, item.capacity > 0)", []),
    ],
)
def test_filter_and_sort_bind_each_element_to_item(source: str, expected_ids: list[str]) -> None:
    assert [c["id"] for c in value_of(source, SCOPE)] == expected_ids


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('first(sort(filter(candidates, item.status == "available"), -item.capacity, item.id)).id', "w-3"),
        ("first(filter(candidates, item.capacity > 100)).id", None),
        ("first([])", None),
        ("first([7, 8])", 7),
        ("len(filter(candidates, item.capacity == 5))", 2),
    ],
)
def test_first_takes_the_head_or_null(source: str, expected: Any) -> None:
    assert value_of(source, SCOPE) == expected


def test_sort_puts_null_keys_last() -> None:
    scope = {"xs": [{"n": None, "id": "a"}, {"n": 2, "id": "b"}, {"n": 1, "id": "c"}]}
    assert [x["id"] for x in value_of("sort(xs, item.n)", scope)] == ["c", "b", "a"]


def test_item_functions_need_a_list_and_an_expression() -> None:
    with pytest.raises(ExpressionError) as caught:
        value_of("filter(candidates)", SCOPE)
    assert caught.value.reason == "filter() takes a list and at least one expression"


@pytest.mark.parametrize(
    ("source", "offset"),
    [("1 / 0", 0), ("10 + 1 / process.zero", 5), ("7 % process.zero", 0)],
)
def test_division_by_zero_is_an_expression_error(source: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        value_of(source, SCOPE)
    assert (caught.value.reason, caught.value.offset) == ("division by zero", offset)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("round(3.14159, 2)", 3.14),
        ("round(3.7)", 4),
        ("round(2.5)", 2),
        ("min(3, 1, 2)", 1),
        ("max([4, 9, 2])", 9),
        ("min(params.base * 2 ** process.attempts, params.cap)", 120),
        ("min(params.base * 2 ** 6, params.cap)", 900),
        ('len("abc")', 3),
        ("len([])", 0),
        ("len(candidates)", 4),
        ("abs(-3)", 3),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
    ],
)
def test_builtin_functions_compute_the_expected_value(source: str, expected: Any) -> None:
    result = value_of(source, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


CHECKS: dict[str, Any] = {"checks": {"scan": True, "load": None, "docs": False, "cache": True}}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('get(checks, "scan")', True),
        ('get(checks, "load")', None),
        ('get(checks, "missing")', None),
        ('get(checks.scan, "x")', None),
        ('get(nothing, "x")', None),
        ('filter(["scan", "load", "docs", "cache"], get(checks, item) != true)', ["load", "docs"]),
        ('len(filter(["scan", "load", "docs"], get(checks, item) == true))', 1),
        ("len(filter([checks.scan, checks.load, checks.docs, checks.cache], item == true))", 2),
        ('round(len(filter(["scan", "load", "docs"], get(checks, item) == true)) / 3, 4)', 0.3333),
    ],
)
def test_get_reads_a_field_by_a_computed_name_so_lists_of_names_can_be_counted_and_filtered(
    source: str, expected: Any
) -> None:
    assert value_of(source, CHECKS) == expected


def test_get_needs_a_string_key() -> None:
    with pytest.raises(ExpressionError) as caught:
        value_of("get(checks, 1)", CHECKS)
    assert (caught.value.reason, caught.value.offset) == ("get(): the key must be a string, got int", 0)


def test_a_failing_builtin_reports_its_name() -> None:
    with pytest.raises(ExpressionError) as caught:
        value_of("len(process.attempts)", SCOPE)
    assert caught.value.reason == "len(): object of type 'int' has no len()"


# --- rendering ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("process.attempts >= params.max_attempts", "process.attempts >= params.max_attempts"),
        (
            "resource.status != 'available' or resource.capacity==0",
            'resource.status != "available" or resource.capacity == 0',
        ),
        ("x not in ['a', \"b\"]", 'x not in ["a", "b"]'),
        ("a and (b or c)", "a and (b or c)"),
        ("not done", "not done"),
        ("-x", "-x"),
        ("[1, 2.5, true, null]", "[1, 2.5, true, null]"),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
        (
            "first(sort(filter(candidates, item.capacity > 0), -item.capacity, item.id)).id",
            "first(sort(filter(candidates, item.capacity > 0), -item.capacity, item.id)).id",
        ),
    ],
)
def test_render_gives_source_that_parses_back_to_the_same_tree(source: str, rendered: str) -> None:
    tree = expr.parse(source)
    assert expr.render(tree) == rendered
    assert shape(msgspec.to_builtins(expr.parse(rendered))) == shape(msgspec.to_builtins(tree))


# --- regressions found by tests/unit/test_expr_property.py ----------------------


def test_a_number_too_long_to_convert_is_a_positioned_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError) as raised:
        expr.parse("x > " + "9" * 5000)
    assert (raised.value.reason, raised.value.offset) == ("number too long (5000 characters)", 4)


@pytest.mark.parametrize("literal", ["1e999", "1.5E+400", "9" * 400 + ".0"])
def test_a_number_literal_beyond_a_finite_float_is_a_positioned_error(literal: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        expr.parse(f"x.y > {literal}")
    assert (raised.value.reason, raised.value.offset) == (f"number {literal} is too large (not a finite float)", 6)


def test_parentheses_nested_past_the_parser_stack_are_a_positioned_error() -> None:
    source = "(" * 3000 + "1" + ")" * 3000
    with pytest.raises(ExpressionError) as raised:
        expr.parse(source)
    assert raised.value.reason == "expression nested too deeply"
    assert 0 < raised.value.offset < 3000


def test_a_tree_deeper_than_100_levels_is_refused_where_it_starts() -> None:
    with pytest.raises(ExpressionError) as raised:
        expr.parse("1" + " + 1" * 100)  # 101 terms, left-nested: 101 levels
    assert (raised.value.reason, raised.value.offset) == ("expression nested too deeply (more than 100 levels)", 0)


def test_a_tree_of_100_levels_parses_evaluates_and_renders() -> None:
    node = expr.parse("1" + " + 1" * 99)
    assert expr.evaluate(node, {}) == 100
    assert expr.render(node) == "1" + " + 1" * 99

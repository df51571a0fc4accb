"""The chunk pre-filter: which equality tests it reads from compiled conditions, and what it decides."""

from __future__ import annotations

from typing import Any

import pytest

from service.adapters.rules_engine.compile import compile_condition
from service.adapters.rules_engine.prefilter import ChunkFilter, Equality, could_equal, necessary_tests
from service.domain import expr

NULLABLE = frozenset({"opt"})


def equalities(source: str) -> list[Equality]:
    compiled = compile_condition(expr.parse(source), {"kind": "BILLING"}, "r0_", NULLABLE)
    return necessary_tests(compiled.condition)


def strings(path: str, *values: str) -> Equality:
    return Equality(tuple(path.split(".")), strings=frozenset(values))


def numbers(path: str, *values: Any) -> Equality:
    return Equality(tuple(path.split(".")), numbers=frozenset(values))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('process.type == "BILLING"', [strings("f.process.type", "BILLING")]),
        ('"BILLING" == process.type', [strings("f.process.type", "BILLING")]),
        ("process.type == params.kind", [strings("f.process.type", "BILLING")]),
        (
            'process.type == "A" and attempts == 2 and latency >= 10',
            [strings("f.process.type", "A"), numbers("f.attempts", 2)],
        ),
        ('status in ["a", "b"]', [strings("f.status", "a", "b")]),
        ('status == "a" or status == "b"', [strings("f.status", "a", "b")]),
        ('(t == "a" and n == 1) or (t == "b" and m == 2)', [strings("f.t", "a", "b")]),
        ("flag == true", [numbers("f.flag", True)]),
        ("flag", [numbers("f.flag", True)]),
        ("n == 2.5", [numbers("f.n", 2.5)]),
        ('not (t != "a")', [strings("f.t", "a")]),
        ('opt == "x"', [numbers("d.r0_0", True)]),
        ("len(name) == 2", [numbers("d.r0_0", True)]),
        # arithmetic and integers beyond 2**53 are derived: the test is on the derived boolean
        ("attempts == failures + 1", [numbers("d.r0_0", True)]),
        ("n == 12345678901234567890", [numbers("d.r0_0", True)]),
    ],
)
def test_equality_conjuncts_become_tests(source: str, expected: list[Equality]) -> None:
    assert equalities(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "true",
        "attempts > 2",
        'status != "a"',
        'not (t == "a")',
        't == "a" or n == 1',
        't == "a" or attempts > 1',
        'status not in ["a", "b"]',
        "attempts == failures",
        "n == 1e20",
        "n == 0.00001",
        't == "a\\"b"',
        't == "a\\\\b"',
    ],
)
def test_no_test_where_durable_rules_might_disagree_or_nothing_is_required(source: str) -> None:
    assert equalities(source) == []


def test_a_string_never_rules_out_a_number_test_nor_the_reverse() -> None:
    assert could_equal(numbers("f.n", 5), "5")  # durable_rules: "5" == 5
    assert could_equal(strings("f.t", "true"), True)  # durable_rules: "true" == true
    assert could_equal(strings("f.t", "1.000000"), 1.0)


def test_numbers_and_booleans_compare_as_durable_rules_does() -> None:
    assert could_equal(numbers("f.n", 1), True)
    assert could_equal(numbers("f.n", 1), 1.0)
    assert could_equal(numbers("f.n", True), 1)
    assert not could_equal(numbers("f.n", 1), 2)
    assert not could_equal(numbers("f.n", 1), False)
    assert not could_equal(strings("f.t", "a"), "b")


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, 2**60, 1e20, 1e-7])
def test_values_whose_engine_comparison_is_not_modelled_could_equal(value: Any) -> None:
    assert could_equal(numbers("f.n", 1), value)


def fact(**facts: Any) -> dict[str, Any]:
    return {"sid": "0", "id": "1", "n": 1, "f": facts, "d": {}}


FILTER = ChunkFilter(
    [
        [{"f.process.type": "A"}, {"$and": [{"f.process.type": "B"}, {"$gt": {"f.attempts": 1}}]}],
        [{"$and": [{"f.process.type": "B"}, {"f.attempts": 2}]}],
        [{"$or": [{"f.process.type": "C"}, {"f.process.type": "D"}]}],
        [{"$gt": {"f.attempts": 5}}],
    ]
)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"process": {"type": "A"}, "attempts": 0}, [0, 3]),
        ({"process": {"type": "B"}, "attempts": 2}, [0, 1, 3]),
        ({"process": {"type": "B"}, "attempts": 3}, [0, 3]),
        ({"process": {"type": "C"}, "attempts": 0}, [2, 3]),
        ({"process": {"type": "Z"}, "attempts": 0}, [3]),
        ({"process": {"type": 8}, "attempts": 2}, [0, 1, 2, 3]),  # a number against strings: kept
        ({"process": {"type": 8}, "attempts": 0}, [0, 2, 3]),  # but attempts == 2 still rules chunk 1 out
        ({"process": {}, "attempts": 2}, [0, 1, 2, 3]),
        ({"process": {"type": None}, "attempts": 2}, [0, 1, 2, 3]),
        ({"process": {"type": "Z"}, "process.type": "A", "attempts": 2}, [0, 1, 2, 3]),
    ],
)
def test_chunks_are_skipped_only_when_no_rule_can_fire(facts: dict[str, Any], expected: list[int]) -> None:
    assert FILTER.chunks(fact(**facts)) == expected


def test_a_string_keeps_a_chunk_testing_for_a_number() -> None:
    mixed = ChunkFilter([[{"f.t": "A"}], [{"$or": [{"f.t": "B"}, {"f.t": 7}]}], [{"f.t": 7}]])
    assert mixed.chunks(fact(t="Z")) == [1, 2]
    assert mixed.chunks(fact(t=7.0)) == [0, 1, 2]
    assert mixed.chunks(fact(t=True)) == [0, 1]


def test_one_chunk_is_kept_when_none_can_fire() -> None:
    only_keyed = ChunkFilter([[{"f.t": "A"}], [{"f.t": "B"}]])
    assert only_keyed.chunks(fact(t="Z")) == [0]
    assert only_keyed.chunks(fact(t="B")) == [1]

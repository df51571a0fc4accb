"""Shadowed rules and missing fallbacks under hit_policy first (pure logic, no files)."""

from __future__ import annotations

import msgspec
import pytest

from service.authoring.rulesets import parse_ruleset
from service.domain import expr
from service.domain.lint import PAIRWISE_LIMIT, Finding, implies, lint


class FakeRule(msgspec.Struct, frozen=True):
    id: str
    priority: int
    order: int
    when: expr.Node


def rules(*specs: tuple[str, int, str]) -> list[FakeRule]:
    return [FakeRule(rule_id, priority, i, expr.parse(when)) for i, (rule_id, priority, when) in enumerate(specs)]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("x >= 5", "x >= 3"),
        ("x == 4", "x >= 3"),
        ("x > 3", "x >= 3"),
        ("x > 3", "x > 3"),
        ("x >= 4", "x > 3"),
        ("x < 1", "x <= 2"),
        ("x <= 2", "x < 2.5"),
        ("3 <= x", "x >= 3"),
        ("x > 5", "x != 3"),
        ('s == "offline"', 's != "available"'),
        ('s in ["offline", "maintenance"]', 's != "available"'),
        ('s == "offline"', 's in ["offline", "maintenance"]'),
        ("x >= 5 and y == 1", "x >= 3"),
        ("x >= 5 or x == 4", "x >= 3"),
        ("x >= 5", "x >= 3 or y == 1"),
        ("x >= 5 and y == 1", "x >= 3 and y == 1"),
        ("a.b > 0 and f(c)", "a.b > 0 and f(c)"),
        ("x > 0", "true"),
    ],
)
def test_a_condition_implies_a_weaker_one(lower: str, higher: str) -> None:
    assert implies(expr.parse(lower), expr.parse(higher)) is True


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("x >= 3", "x >= 5"),
        ("x >= 3", "x > 3"),
        ("x > 3", "x >= 4"),  # a number, not necessarily an integer: 3.5
        ("x == 2", "x >= 3"),
        ("x >= 3", "x == 4"),
        ("x >= 3", "x <= 10"),
        ("x != 3", "x != 4"),  # x may be null or 4
        ("x > 1", "x != 3"),
        ("x >= 5", "y >= 3"),
        ("x >= 5 or y == 1", "x >= 3"),
        ("x >= 5", "x >= 3 and y == 1"),
        ("x == 4", "x * 2 >= 8 and y"),
        ('s == "a"', "len(s) == 1"),
        ("true", "x >= 3"),
        ("not (x < 3)", "x >= 3"),  # true, but beyond what is proved: silence, not a wrong warning
    ],
)
def test_a_condition_does_not_imply_one_it_may_miss(lower: str, higher: str) -> None:
    assert implies(expr.parse(lower), expr.parse(higher)) is False


def test_a_lower_rule_with_a_stronger_bound_on_the_same_path_is_shadowed() -> None:
    findings = lint("first", rules(("high", 50, "x >= 3"), ("low", 40, "x >= 5"), ("rest", 0, "true")), {})
    assert findings == [
        Finding(1, "rule 'low' can never win: rule 'high' (priority 50) ranks above it and matches whenever it does")
    ]


def test_priority_not_file_order_decides_who_shadows_whom() -> None:
    findings = lint("first", rules(("low", 10, "x >= 5"), ("high", 50, "x >= 3"), ("rest", 0, "true")), {})
    assert [(f.rule, f.reason.split(":")[0]) for f in findings] == [(0, "rule 'low' can never win")]


def test_equal_priorities_are_ranked_by_file_order() -> None:
    findings = lint("first", rules(("first", 5, "x > 1"), ("second", 5, "x > 1"), ("rest", 0, "true")), {})
    assert [f.rule for f in findings] == [1]


def test_the_stronger_rule_above_the_weaker_one_is_fine() -> None:
    assert lint("first", rules(("strict", 50, "x >= 5"), ("loose", 40, "x >= 3"), ("rest", 0, "true")), {}) == []


def test_params_are_folded_before_comparing_bounds() -> None:
    shadow = rules(("high", 50, "x >= params.low"), ("low", 40, "x >= params.high"), ("rest", 0, "true"))
    assert [f.rule for f in lint("first", shadow, {"low": 3, "high": 5})] == [1]
    assert lint("first", shadow, {"low": 5, "high": 3}) == []


def test_an_unconditional_rule_above_others_shadows_every_one_of_them() -> None:
    findings = lint("first", rules(("always", 50, "true"), ("a", 40, "x > 1"), ("b", 30, "y == 2")), {})
    assert [f.rule for f in findings] == [1, 2]
    assert (
        findings[0].reason == "rule 'a' can never win: rule 'always' (priority 50) ranks above it and has no condition"
    )


def test_a_first_ruleset_without_an_unconditional_rule_has_no_fallback() -> None:
    findings = lint("first", rules(("a", 50, "x > 1"), ("b", 40, "y == 2")), {})
    assert [f.rule for f in findings] == [None]
    assert findings[0].reason.startswith("hit_policy 'first' without a fallback: no rule has 'when: true'")


def test_collect_rulesets_are_not_linted_for_shadowing_or_fallback() -> None:
    assert lint("collect", rules(("a", 50, "x >= 3"), ("b", 40, "x >= 5")), {}) == []


SCENARIOS = {"scenario": ["a", "b", "c"]}


def test_rules_covering_every_value_of_an_enumerated_fact_are_a_fallback() -> None:
    covering = rules(("a", 10, 'scenario == "a"'), ("bc", 10, 'scenario in ["b", "c"]'))
    assert lint("first", covering, {}, SCENARIOS) == []


def test_rules_missing_one_enum_value_have_no_fallback() -> None:
    partial = rules(("a", 10, 'scenario == "a"'), ("b", 10, 'scenario == "b" and x > 1'), ("c", 10, 'scenario == "c"'))
    assert [f.rule for f in lint("first", partial, {}, SCENARIOS)] == [None]


ALL_STATUSES = '["available", "unavailable", "overloaded", "offline", "maintenance"]'


@pytest.mark.parametrize(
    ("dispatch_when", "expected"),
    [
        (f"when: resource.status in {ALL_STATUSES}", []),
        ('when: resource.status in ["available", "unavailable", "overloaded", "offline"]', [(62, 1, "rules")]),
    ],
)
def test_a_loaded_ruleset_counts_its_required_enum_fields_as_a_fallback(
    ops_text: str, dispatch_when: str, expected: list[tuple[int, int, str]]
) -> None:
    ruleset = parse_ruleset(ops_text.replace("when: true", dispatch_when).encode(), "rules/ops.yaml", [])
    assert [(w.line, w.column, w.path) for w in ruleset.warnings] == expected
    assert all(w.severity == "warning" for w in ruleset.warnings)


def test_above_the_pairwise_limit_only_identical_and_unconditional_winners_shadow() -> None:
    many = [(f"r{i:04d}", 100, f"x == {i}") for i in range(PAIRWISE_LIMIT)]
    specs = [
        ("bound", 500, "x >= 3"),  # would shadow "tighter" below, but is not looked for at this size
        *many,
        ("tighter", 50, "x >= 5"),
        ("same", 40, "x == 7"),
        ("catch-all", 30, "true"),
        ("after-all", 20, "y > 1"),
    ]
    found = {f.reason.split("'")[1]: f.reason for f in lint("first", rules(*specs), {})}
    # Pairwise, "bound" would also shadow "tighter" and r0003..r0199.
    assert found == {
        "same": "rule 'same' can never win: rule 'r0007' (priority 100) ranks above it and matches whenever it does",
        "after-all": (
            "rule 'after-all' can never win: rule 'catch-all' (priority 30) ranks above it and has no condition"
        ),
    }

"""Regressions for bugs found in review, each pinned by its reproduction."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.adapters.rules_engine.compile import compile_condition
from service.domain import expr
from service.domain.decision import Proposal, Verdict, decide
from service.domain.ruleset import Ruleset
from service.domain.schema import FactDecoder, FieldSpec
from service.errors import ExpressionError


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("(a + b) * c", "(a + b) * c"),
        ("not (a and b)", "not (a and b)"),
        ("(-x) ** 2", "(-x) ** 2"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a or b) and c", "(a or b) and c"),
        ("a - b - c", "a - b - c"),
    ],
)
def test_render_keeps_the_parentheses_that_carry_meaning(source: str, rendered: str) -> None:
    assert expr.render(expr.parse(source)) == rendered


@pytest.mark.parametrize(("source", "reason"), [("0 ** -1", "division by zero"), ("10.0 ** 400", "'**' overflows")])
def test_arithmetic_failures_are_expression_errors(source: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        expr.evaluate(expr.parse(source), {})
    assert caught.value.reason == reason


def test_a_chained_comparison_points_at_the_second_operator() -> None:
    with pytest.raises(ExpressionError) as caught:
        expr.parse("1 < x < 3")
    assert caught.value.offset == 6


def test_comparisons_over_optional_fields_are_derived_so_null_behaves_like_the_evaluator() -> None:
    node = expr.parse("not (x > 1) and y == 2")
    compiled = compile_condition(node, {}, "r0_", nullable=frozenset({"x"}))
    assert compiled.condition == {"$and": [{"d.r0_0": True}, {"f.y": 2}]}
    assert [expr.render(n) for _, n in compiled.derived] == ["not x > 1"]


def test_number_fields_accept_fractional_bounds() -> None:
    decoder = FactDecoder("t", {"amount": FieldSpec(type="number", gt=0.5)})
    assert decoder.decode_json(b'{"amount": 1}') == {"amount": 1}
    assert decoder.decode_json(b'{"amount": 0.75}') == {"amount": 0.75}


def test_a_denial_without_violations_is_summarised_as_a_denial(ops: Ruleset) -> None:
    proposal = Proposal("OPS.DISPATCH", 0.85, "NORMAL", [{"type": "TRIGGER_PROCESS", "autonomy": "L2"}], ["dispatch"])
    facts = {"resource": {"id": "w"}}
    outcome = decide(ops, facts, [], proposal, Verdict(available=True, allow=False))
    assert outcome.execution.status == "ESCALATED"
    assert outcome.summary.endswith("but guardrails denied it (no reason given); escalated to a human.")


def test_errors_inside_a_folded_block_scalar_point_at_the_right_line_and_column(tmp_path: Path) -> None:
    from service.authoring.rulesets import load_ruleset
    from service.errors import RulesetInvalid

    text = (Path(__file__).resolve().parents[2] / "rules" / "ops.yaml").read_text()
    broken = text.replace("and item.id != resource.id)", "and item.id != resource.idd)")
    path = tmp_path / "ops.yaml"
    path.write_text(broken)
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(path, "rules/ops.yaml", [])
    lines = broken.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "resource.idd" in t)
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (line, lines[line - 1].index("resource.idd") + 1)
    assert problem.reason == "unknown fact path 'resource.idd'"

"""Every walk over the expression tree handles every node kind.

Each walk is one ``match`` ending in ``assert_never``: mypy names the walks a new
node kind has not reached, and these tests fail at run time the same way, so a
kind added to ``expr.Node`` without a case in each walk cannot go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import msgspec
import pytest

from service.adapters.rules_engine.compile import compile_condition
from service.domain import expr
from service.domain.expr.typecheck import type_mismatches
from service.domain.lint import implies
from service.domain.schema import FieldSpec

SCOPE: dict[str, Any] = {"x": 2, "items": [3, 1], "m": {"v": 1}}
FACTS = {"x": FieldSpec(type="int"), "items": FieldSpec(type="list"), "m": FieldSpec(type="object")}

# one instance of every node kind
SAMPLES: list[expr.Node] = [
    expr.Literal(0, 1),
    expr.Path(0, ("x",)),
    expr.Attr(0, expr.Path(0, ("m",)), "v"),
    expr.ListExpr(0, (expr.Literal(0, 1), expr.Path(0, ("x",)))),
    expr.Unary(0, "-", expr.Path(0, ("x",))),
    expr.Binary(0, ">", expr.Path(0, ("x",)), expr.Literal(0, 1)),
    expr.BoolOp(0, "and", (expr.Path(0, ("x",)), expr.Literal(0, True))),
    expr.Call(0, "len", (expr.Path(0, ("items",)),)),
]


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found))


def _in_operator(node: expr.Node) -> expr.Node:
    """``node`` as both operands of an operator, so that its precedence is asked for."""
    return expr.Binary(0, "*", node, node)


WALKS: dict[str, Callable[[expr.Node], object]] = {
    "evaluate": lambda node: expr.evaluate(node, SCOPE),
    "render": expr.render,
    "render's precedence": lambda node: expr.render(_in_operator(node)),
    "children": expr.children,
    "typecheck": lambda node: type_mismatches(node, FACTS, {}),
    "compile a condition": lambda node: compile_condition(node, {}, "r0_"),
    "compile a negated condition": lambda node: compile_condition(expr.Unary(0, "not", node), {}, "r0_"),
    "compile an operand": lambda node: compile_condition(expr.Binary(0, "==", expr.Path(0, ("x",)), node), {}, "r0_"),
    "lint's implication": lambda node: implies(node, expr.Path(0, ("x",))),
}


def test_the_node_union_names_every_node_class() -> None:
    assert set(get_args(expr.Node)) == _subclasses(expr.NodeBase)


def test_the_samples_hold_one_node_of_every_kind() -> None:
    assert sorted(type(node).__name__ for node in SAMPLES) == sorted(kind.__name__ for kind in get_args(expr.Node))


@pytest.mark.parametrize("walk", list(WALKS))
@pytest.mark.parametrize("node", SAMPLES, ids=lambda node: type(node).__name__)
def test_every_walk_handles_every_node_kind(walk: str, node: expr.Node) -> None:
    WALKS[walk](node)  # a kind without its case ends in assert_never's AssertionError


@pytest.mark.parametrize("node", SAMPLES, ids=lambda node: type(node).__name__)
def test_every_node_kind_survives_a_json_round_trip_through_the_tagged_union(node: expr.Node) -> None:
    assert msgspec.json.decode(msgspec.json.encode(node), type=expr.Node) == node

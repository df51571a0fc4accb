"""Constant folding of expressions: ``params.x`` replaced by its value, constant arithmetic computed.

Pure.  The rules engine folds each condition before compiling it, the linter folds conditions to
compare them, and the ruleset builder folds each condition once to report, at file:line:column, a
constant that cannot be computed (``1 / 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

from service.domain.expr import Attr, Binary, BoolOp, Call, ListExpr, Literal, Node, Path, Unary, evaluate


def fold_params(node: Node, params: Mapping[str, Any]) -> Node:
    """Replace ``params.x`` with its value and fold constant arithmetic."""
    match node:
        case Path(parts=("params", name)):
            return Literal(node.pos, params.get(name))
        case Binary():
            return _fold_constant(
                Binary(node.pos, node.op, fold_params(node.left, params), fold_params(node.right, params))
            )
        case BoolOp():
            return BoolOp(node.pos, node.op, tuple(fold_params(o, params) for o in node.operands))
        case Unary():
            return _fold_constant(Unary(node.pos, node.op, fold_params(node.operand, params)))
        case ListExpr():
            return ListExpr(node.pos, tuple(fold_params(i, params) for i in node.items))
        case Call():
            return Call(node.pos, node.name, tuple(fold_params(a, params) for a in node.args))
        case Literal() | Path() | Attr():  # never folded inside an attribute access
            return node
        case _:
            assert_never(node)


def _fold_constant(node: Binary | Unary) -> Node:
    children = [node.left, node.right] if isinstance(node, Binary) else [node.operand]
    if all(isinstance(c, Literal) for c in children):
        return Literal(node.pos, evaluate(node, {}))
    return node

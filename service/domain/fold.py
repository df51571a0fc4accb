"""Constant folding of expressions: ``params.x`` replaced by its value, constant arithmetic computed.

Pure.  The rules engine folds each condition before compiling it, the linter folds conditions to
compare them, and the ruleset builder folds each condition once to report, at file:line:column, a
constant that cannot be computed (``1 / 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain.expr import Binary, BoolOp, Call, ListExpr, Literal, Node, Path, Unary, evaluate


def fold_params(node: Node, params: Mapping[str, Any]) -> Node:
    """Replace ``params.x`` with its value and fold constant arithmetic."""
    if isinstance(node, Path) and node.parts[0] == "params" and len(node.parts) == 2:
        return Literal(node.pos, params.get(node.parts[1]))
    if isinstance(node, Binary):
        folded = Binary(node.pos, node.op, fold_params(node.left, params), fold_params(node.right, params))
        return _fold_constant(folded)
    if isinstance(node, BoolOp):
        return BoolOp(node.pos, node.op, tuple(fold_params(o, params) for o in node.operands))
    if isinstance(node, Unary):
        return _fold_constant(Unary(node.pos, node.op, fold_params(node.operand, params)))
    if isinstance(node, ListExpr):
        return ListExpr(node.pos, tuple(fold_params(i, params) for i in node.items))
    if isinstance(node, Call):
        return Call(node.pos, node.name, tuple(fold_params(a, params) for a in node.args))
    return node


def _fold_constant(node: Binary | Unary) -> Node:
    children = [node.left, node.right] if isinstance(node, Binary) else [node.operand]
    if all(isinstance(c, Literal) for c in children):
        return Literal(node.pos, evaluate(node, {}))
    return node

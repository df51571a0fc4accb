"""Compile parsed conditions into durable_rules JSON (pure: no engine import).

The engine asserts each decision as one fact ``{"sid", "id", "n", "f": facts,
"d": derived}``.  User facts live under ``f`` so that no fact field can clash
with durable_rules' reserved names (``sid``, ``id``).  What durable_rules can
match natively (a path against a constant, or against arithmetic over other
paths of the same fact) compiles to its JSON; anything else (function calls,
``**``, membership in a path) becomes a *derived* boolean, computed in Python
before assertion and matched as ``d.kN == true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

import msgspec

from service.domain.expr import (
    Attr,
    Binary,
    BoolOp,
    Call,
    ListExpr,
    Literal,
    Node,
    Path,
    Unary,
    literal_values,
    paths,
)
from service.domain.fold import fold_params

JSON = dict[str, Any]

FACTS_KEY = "f"
DERIVED_KEY = "d"
SEQ_KEY = "n"
MATCH_ALL: JSON = {"$gte": {SEQ_KEY: 0}}

_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_DURABLE_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


class Compiled(msgspec.Struct, frozen=True):
    condition: JSON
    derived: tuple[tuple[str, Node], ...] = ()


class _Compiler:
    def __init__(self, derived_prefix: str, nullable: frozenset[str]) -> None:
        self.prefix = derived_prefix
        self.nullable = nullable
        self.derived: list[tuple[str, Node]] = []

    def condition(self, node: Node, negate: bool = False) -> JSON:
        match node:
            case Literal(value=bool() as value) if value != negate:
                return MATCH_ALL
            case BoolOp():
                return self._boolop(node, negate)
            case Unary(op="not", operand=operand):
                return self.condition(operand, not negate)
            case Path() if node.dotted not in self.nullable:
                return {_fact_path(node): not negate}
            case Binary():
                compiled = self._comparison(node, negate)
                if compiled is not None:
                    return compiled
            case Literal() | Path() | Attr() | ListExpr() | Unary() | Call():
                pass  # no durable_rules form: derived below
            case _:
                assert_never(node)
        return self._derive(Unary(node.pos, "not", node) if negate else node)

    def _boolop(self, node: BoolOp, negate: bool) -> JSON:
        op = {"and": "or", "or": "and"}[node.op] if negate else node.op
        return {f"${op}": [self.condition(o, negate) for o in node.operands]}

    def _comparison(self, node: Binary, negate: bool) -> JSON | None:
        # durable_rules never matches null against a comparison, where the
        # expression language's `!=` and `not` would: such paths are derived.
        if any(path.dotted in self.nullable for path in paths(node)):
            return None
        if node.op in ("in", "not in"):
            return self._membership(node, negate)
        op = _NEGATE[node.op] if negate else node.op
        left, right = node.left, node.right
        if not isinstance(left, Path):
            left, right, op = right, left, _FLIP[op]
        if not isinstance(left, Path):
            return None
        value = _operand(right)
        if value is _UNSUPPORTED:
            return None
        key = _fact_path(left)
        return {key: value} if op == "==" else {_OPS[op]: {key: value}}

    def _membership(self, node: Binary, negate: bool) -> JSON | None:
        match node:
            case Binary(left=Path() as path, right=ListExpr(items=items)) if items:
                values = literal_values(items)
            case _:
                return None
        if values is None:
            return None
        inside = (node.op == "in") != negate
        key = _fact_path(path)
        if inside:
            return {"$or": [{key: value} for value in values]}
        return {"$and": [{"$neq": {key: value}} for value in values]}

    def _derive(self, node: Node) -> JSON:
        key = f"{self.prefix}{len(self.derived)}"
        self.derived.append((key, node))
        return {f"{DERIVED_KEY}.{key}": True}


_UNSUPPORTED = object()


def _operand(node: Node) -> Any:
    """durable_rules' right-hand side: a constant, a path, or arithmetic of those."""
    match node:
        case Literal(value=int() | float() | str() as value):  # bool is an int
            return value
        case Path():
            return {"$m": _fact_path(node)}
        case Binary(op=op, left=left, right=right) if op in _DURABLE_ARITH:
            left_value, right_value = _operand(left), _operand(right)
            if left_value is _UNSUPPORTED or right_value is _UNSUPPORTED:
                return _UNSUPPORTED
            return {_DURABLE_ARITH[op]: {"$l": left_value, "$r": right_value}}
        case Literal() | Binary() | Attr() | ListExpr() | Unary() | BoolOp() | Call():
            return _UNSUPPORTED
        case _:
            assert_never(node)


def _fact_path(path: Path) -> str:
    return f"{FACTS_KEY}." + path.dotted


def compile_condition(
    node: Node, params: Mapping[str, Any], derived_prefix: str, nullable: frozenset[str] = frozenset()
) -> Compiled:
    """Compile one rule condition.

    ``derived_prefix`` keeps derived keys unique per rule; ``nullable`` names the
    fact paths that may be null (optional fields and everything below them).
    """
    compiler = _Compiler(derived_prefix, nullable)
    condition = compiler.condition(fold_params(node, params))
    return Compiled(condition, tuple(compiler.derived))

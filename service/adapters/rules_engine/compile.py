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
from typing import Any

import msgspec

from service.domain.expr import (
    Binary,
    BoolOp,
    ListExpr,
    Literal,
    Node,
    Path,
    Unary,
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
        if isinstance(node, Literal) and isinstance(node.value, bool):
            if node.value != negate:
                return MATCH_ALL
        elif isinstance(node, BoolOp):
            return self._boolop(node, negate)
        elif isinstance(node, Unary) and node.op == "not":
            return self.condition(node.operand, not negate)
        elif isinstance(node, Path) and node.dotted not in self.nullable:
            return {_fact_path(node): not negate}
        elif isinstance(node, Binary):
            compiled = self._comparison(node, negate)
            if compiled is not None:
                return compiled
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
        if not isinstance(node.left, Path) or not isinstance(node.right, ListExpr) or not node.right.items:
            return None
        if not all(isinstance(item, Literal) for item in node.right.items):
            return None
        inside = (node.op == "in") != negate
        key = _fact_path(node.left)
        values = [item.value for item in node.right.items if isinstance(item, Literal)]
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
    if isinstance(node, Literal):
        return node.value if isinstance(node.value, (int, float, str, bool)) else _UNSUPPORTED
    if isinstance(node, Path):
        return {"$m": _fact_path(node)}
    if isinstance(node, Binary) and node.op in _DURABLE_ARITH:
        left, right = _operand(node.left), _operand(node.right)
        if left is _UNSUPPORTED or right is _UNSUPPORTED:
            return _UNSUPPORTED
        return {_DURABLE_ARITH[node.op]: {"$l": left, "$r": right}}
    return _UNSUPPORTED


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

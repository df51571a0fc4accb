"""Compile parsed conditions into durable_rules JSON (pure: no engine import).

The engine asserts each decision as one fact ``{"sid", "id", "n", "f": facts,
"d": derived}``.  User facts live under ``f`` so that no fact field can clash
with durable_rules' reserved names (``sid``, ``id``).  What durable_rules
matches as the expression language does (a path against a constant or another
path of the same fact) compiles to its JSON; anything else (function calls,
arithmetic, membership in a path) becomes a *derived* boolean, computed in
Python before assertion and matched as ``d.kN == true``.

durable_rules compares an integer with a double after converting it to a double,
reads integers as 64 bits (saturating beyond), divides integers as integers and
lets their products wrap: so arithmetic is always derived, and so is a
comparison with an integer constant beyond 2**53 (or a float constant that is
not finite, which JSON cannot carry).  The facts' own integers beyond 2**53 are
the engine's to handle (``engine.py``).
"""

from __future__ import annotations

import math
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
#: Integers up to this magnitude are doubles too: durable_rules compares them exactly.
EXACT_INT = 2**53


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
        if values is None or not all(exact(value) for value in values):
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
    """durable_rules' right-hand side: a constant it compares exactly, or a path."""
    match node:
        case Literal(value=int() | float() | str() as value) if exact(value):  # bool is an int
            return value
        case Path():
            return {"$m": _fact_path(node)}
        case Literal() | Binary() | Attr() | ListExpr() | Unary() | BoolOp() | Call():
            return _UNSUPPORTED
        case _:
            assert_never(node)


def exact(value: Any) -> bool:
    """Whether durable_rules reads every number in ``value`` back as itself and compares it as Python does."""
    kind = type(value)  # once per decision: the exact types of decoded JSON first, as they are the fastest test
    if kind is str:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return bool(-EXACT_INT <= value <= EXACT_INT)
    if kind is dict:
        return all(map(exact, value.values()))
    if kind is list:
        return all(map(exact, value))
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):  # bool too
        return -EXACT_INT <= value <= EXACT_INT
    if isinstance(value, Mapping):
        return all(map(exact, value.values()))
    if isinstance(value, (list, tuple)):
        return all(map(exact, value))
    return True


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

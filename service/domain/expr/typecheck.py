"""Static types of expressions against a ruleset's fact schema (pure).

Finds the mistakes that would otherwise only show up as a rule that silently
never matches: a number compared with a string, arithmetic on a string.  A
type is only asserted when it is certain (a declared fact, a param, a
literal); anything unknown (``item``, ``first(...)``, attributes) passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

from service.domain.expr.render import render
from service.domain.expr.syntax import COMPARISONS, Attr, Binary, BoolOp, Call, ListExpr, Literal, Node, Path, Unary
from service.domain.schema import FieldSpec

Mismatch = tuple[int, str]  # (offset in the expression, reason)

_ORDERED = frozenset({"<", "<=", ">", ">="})
_NUMERIC_CALLS = frozenset({"len", "abs", "floor", "ceil", "round"})


def type_mismatches(node: Node, facts: Mapping[str, FieldSpec], params: Mapping[str, Any]) -> list[Mismatch]:
    """Every certain type mismatch in ``node``, in no particular order."""
    checker = _Checker(facts, params)
    checker.infer(node)
    return checker.found


def _value_type(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return "list" if isinstance(value, list) else None


def _field_type(facts: Mapping[str, FieldSpec], parts: tuple[str, ...]) -> str | None:
    spec = facts.get(parts[0])
    for name in parts[1:]:
        spec = spec.fields.get(name) if spec is not None and spec.fields else None
    if spec is None:
        return None
    return "number" if spec.type in ("int", "number") else spec.type


class _Checker:
    def __init__(self, facts: Mapping[str, FieldSpec], params: Mapping[str, Any]) -> None:
        self.facts = facts
        self.params = params
        self.found: list[Mismatch] = []

    def infer(self, node: Node) -> str | None:
        match node:
            case Literal(value=value):
                return _value_type(value)
            case Path():
                return self._path(node)
            case Attr():
                return None  # an attribute of a computed value: its type is never certain
            case ListExpr(items=items):
                for item in items:
                    self.infer(item)
                return "list"
            case Binary():
                return self._binary(node)
            case BoolOp(operands=operands):
                for operand in operands:
                    self.infer(operand)
                return "bool"
            case Unary():
                return self._unary(node)
            case Call():
                return self._call(node)
            case _:
                assert_never(node)

    def _path(self, node: Path) -> str | None:
        root = node.parts[0]
        if root == "params":
            return _value_type(self.params.get(node.parts[1])) if len(node.parts) == 2 else None
        return None if root == "item" else _field_type(self.facts, node.parts)

    def _unary(self, node: Unary) -> str:
        kind = self.infer(node.operand)
        if node.op == "not":
            return "bool"
        self._need_number(node.operand, kind, "'-'")
        return "number"

    def _binary(self, node: Binary) -> str | None:
        left, right = self.infer(node.left), self.infer(node.right)
        if node.op in ("in", "not in"):
            if right not in (None, "null", "list", "str"):
                self._at(node.right, f"type mismatch: {node.op!r} needs a list or a string on its right, got {right}")
            return "bool"
        if node.op in COMPARISONS:
            self._comparison(node, left, right)
            return "bool"
        if node.op == "+" and "str" in (left, right) and {left, right} <= {"str", None, "null"}:
            return "str"
        self._need_number(node.left, left, f"{node.op!r}")
        self._need_number(node.right, right, f"{node.op!r}")
        return "number"

    def _comparison(self, node: Binary, left: str | None, right: str | None) -> None:
        if None in (left, right) or "null" in (left, right):
            return
        if left != right:
            outcome = "never true" if node.op != "!=" else "always true"
            self._at(node.right, f"type mismatch: {_describe(node.left)} is {left}, compared with {right} ({outcome})")
        elif node.op in _ORDERED and left not in ("number", "str"):
            self._at(node.left, f"type mismatch: {node.op!r} cannot order values of type {left}")

    def _need_number(self, node: Node, kind: str | None, what: str) -> None:
        if kind not in (None, "null", "number"):
            self._at(node, f"type mismatch: {what} needs numbers, {_describe(node)} is {kind}")

    def _call(self, node: Call) -> str | None:
        kinds = [self.infer(arg) for arg in node.args]
        if node.name in _NUMERIC_CALLS:
            return "number"
        if node.name in ("min", "max"):
            return "number" if kinds and all(k == "number" for k in kinds) else None
        if node.name in ("filter", "sort"):
            return "list"
        return "str" if node.name == "str" else None

    def _at(self, node: Node, reason: str) -> None:
        self.found.append((node.pos, reason))


def _describe(node: Node) -> str:
    match node:
        case Path(dotted=dotted):
            return repr(dotted)
        case _:
            return render(node)

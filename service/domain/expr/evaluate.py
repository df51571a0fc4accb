"""Evaluating a tree against a scope of named roots; nothing is handed to Python's ``eval``.

Paths that lead nowhere evaluate to ``None``, and comparisons involving ``None``
(other than equality) are false, so a rule over an absent optional field simply
does not match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, assert_never

from service.domain.expr.syntax import COMPARISONS, Attr, Binary, BoolOp, Call, ListExpr, Literal, Node, Path, Unary
from service.errors import ExpressionError

Scope = Mapping[str, Any]


def evaluate(node: Node, scope: Scope) -> Any:
    """Evaluate ``node`` with the given roots (facts' fields, ``params``)."""
    match node:  # the commonest kinds first: each case is one isinstance test
        case Path():
            return _path(node.parts, scope)
        case Binary():
            return _binary(node, evaluate(node.left, scope), evaluate(node.right, scope))
        case Literal():
            return node.value
        case BoolOp():
            return _boolop(node, scope)
        case Call():
            return _call(node, scope)
        case Unary():
            return _unary(node, evaluate(node.operand, scope))
        case Attr():
            return _get(evaluate(node.target, scope), node.name)
        case ListExpr():
            return [evaluate(item, scope) for item in node.items]
        case _:
            assert_never(node)


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


def _path(parts: tuple[str, ...], scope: Scope) -> Any:
    value: Any = scope.get(parts[0])
    for name in parts[1:]:
        value = _get(value, name)
    return value


def _unary(node: Unary, value: Any) -> Any:
    if node.op == "not":
        return not value
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ExpressionError(f"'-' needs a number, got {_type_name(value)}", node.pos)
    return -value


def _binary(node: Binary, left: Any, right: Any) -> Any:
    if node.op in COMPARISONS:
        return _compare(node.op, left, right)
    return _arith(node, left, right)


def _boolop(node: BoolOp, scope: Scope) -> bool:
    want = node.op == "or"
    for operand in node.operands:
        if bool(evaluate(operand, scope)) is want:
            return want
    return not want


def _call(node: Call, scope: Scope) -> Any:
    if node.name in _ITEM_FUNCTIONS:
        return _ITEM_FUNCTIONS[node.name](node, scope)
    function = FUNCTIONS.get(node.name)
    if function is None:
        raise ExpressionError(f"unknown function {node.name!r}", node.pos)
    args = [evaluate(arg, scope) for arg in node.args]
    try:
        return function(*args)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise ExpressionError(f"{node.name}(): {error}", node.pos) from error


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op in ("in", "not in"):
        found = isinstance(right, (list, tuple, str, Mapping)) and left in right
        return found if op == "in" else not found
    if left is None or right is None or isinstance(left, bool) != isinstance(right, bool):
        return False
    try:
        return bool(_ORDERINGS[op](left, right))
    except TypeError:
        return False


_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
}


def _arith(node: Binary, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if node.op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
        raise ExpressionError(f"'{node.op}' needs numbers, got {_type_name(left)} and {_type_name(right)}", node.pos)
    try:
        return _ARITH[node.op](left, right)
    except ZeroDivisionError:
        raise ExpressionError("division by zero", node.pos) from None
    except OverflowError:
        raise ExpressionError(f"'{node.op}' overflows", node.pos) from None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- functions ----------------------------------------------------------------


def _items_of(node: Call, scope: Scope) -> list[Any]:
    if len(node.args) < 2:
        raise ExpressionError(f"{node.name}() takes a list and at least one expression", node.pos)
    items = evaluate(node.args[0], scope)
    return list(items) if isinstance(items, (list, tuple)) else []


def _with_item(scope: Scope, item: Any) -> Scope:
    return {**scope, "item": item}


def _filter(node: Call, scope: Scope) -> list[Any]:
    items = _items_of(node, scope)
    return [item for item in items if evaluate(node.args[1], _with_item(scope, item))]


def _sort(node: Call, scope: Scope) -> list[Any]:
    items = _items_of(node, scope)

    def key(item: Any) -> tuple[tuple[int, Any], ...]:
        scoped = _with_item(scope, item)
        return tuple(_sort_key(evaluate(arg, scoped)) for arg in node.args[1:])

    return sorted(items, key=key)


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts last; numbers and strings each among themselves.
    if value is None:
        return (2, 0)
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


_ITEM_FUNCTIONS: dict[str, Callable[[Call, Scope], Any]] = {"filter": _filter, "sort": _sort}


def _round(value: float, digits: int = 0) -> float | int:
    result = round(value, digits)
    return result if digits else int(result)


def _first(items: Sequence[Any] | None) -> Any:
    return items[0] if items else None


def _lookup(value: Any, key: Any) -> Any:
    # get(object, key): a field whose name is computed (an item of a list of names), null when absent
    if not isinstance(key, str):
        raise TypeError(f"the key must be a string, got {_type_name(key)}")
    return _get(value, key)


def _str(value: Any) -> str:
    # keeps its name: a wrong call's message ("_str() missing 1 required positional argument") shows it
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: ``str()`` as the expression language spells it: ``true``, ``null``, ``3`` for ``3.0``.
text_of = _str


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "round": _round,
    "len": len,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "first": _first,
    "get": _lookup,
    "str": _str,
}

#: Functions whose arguments after the first are evaluated once per list item,
#: with that item bound to the name ``item``.
ITEM_FUNCTIONS = frozenset(_ITEM_FUNCTIONS)
ALL_FUNCTIONS = frozenset(FUNCTIONS) | ITEM_FUNCTIONS

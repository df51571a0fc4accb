"""The expression language shared by rule conditions and rule outputs.

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not in") sum)?
    sum     := product (("+"|"-") product)*
    product := unary (("*"|"/"|"%") unary)*
    unary   := "-" unary | power
    power   := postfix ("**" unary)?
    postfix := atom ("." NAME)*
    atom    := NUMBER | STRING | true | false | null | "[" list "]"
             | NAME "(" args ")" | NAME | "(" expr ")"

Expressions are parsed into a small tree and evaluated by walking it; nothing is
ever handed to Python's ``eval``.  Paths that lead nowhere evaluate to ``None``,
and comparisons involving ``None`` (other than equality) are false, so a rule
over an absent optional field simply does not match.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from service.errors import ExpressionError


class Node(msgspec.Struct, frozen=True, tag_field="kind"):
    """Base of the expression tree; ``pos`` is the 0-based offset in the source."""

    pos: int


class Literal(Node, frozen=True, tag="literal"):
    value: Any


class Path(Node, frozen=True, tag="path"):
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class Attr(Node, frozen=True, tag="attr"):
    target: Node
    name: str


class ListExpr(Node, frozen=True, tag="list"):
    items: tuple[Node, ...]


class Unary(Node, frozen=True, tag="unary"):
    op: str
    operand: Node


class Binary(Node, frozen=True, tag="binary"):
    op: str
    left: Node
    right: Node


class BoolOp(Node, frozen=True, tag="boolop"):
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


class Call(Node, frozen=True, tag="call"):
    name: str
    args: tuple[Node, ...]


COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "**"})
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|==|!=|<=|>=|[-+*/%<>().,\[\]])
    """,
    re.VERBOSE,
)

Token = tuple[str, str, int]  # kind, text, offset


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {source[pos]!r}", pos)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group(), pos))
        pos = match.end()
    tokens.append(("end", "", len(source)))
    return tokens


def _unescape(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        kind, value, _ = self.current
        return kind in ("op", "name") and value == text

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise ExpressionError(f"expected {text!r}, found {self._describe()}", self.current[2])
        return self.advance()

    def _describe(self) -> str:
        kind, value, _ = self.current
        return "end of expression" if kind == "end" else repr(value)

    def parse(self) -> Node:
        node = self.parse_or()
        if self.current[0] != "end":
            raise ExpressionError(f"unexpected {self._describe()}", self.current[2])
        return node

    def _bool_chain(self, op: str, parse_operand: Callable[[], Node]) -> Node:
        first = parse_operand()
        operands = [first]
        while self.at(op):
            self.advance()
            operands.append(parse_operand())
        return first if len(operands) == 1 else BoolOp(first.pos, op, tuple(operands))

    def parse_or(self) -> Node:
        return self._bool_chain("or", self.parse_and)

    def parse_and(self) -> Node:
        return self._bool_chain("and", self.parse_not)

    def parse_not(self) -> Node:
        if self.at("not"):
            pos = self.advance()[2]
            return Unary(pos, "not", self.parse_not())
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_sum()
        op = self._comparison_operator()
        if op is None:
            return left
        node = Binary(left.pos, op, left, self.parse_sum())
        second = self.current[2]
        if self._comparison_operator() is not None:
            raise ExpressionError("comparisons cannot be chained; join them with 'and'", second)
        return node

    def _comparison_operator(self) -> str | None:
        kind, value, _ = self.current
        if kind == "op" and value in COMPARISONS:
            self.advance()
            return value
        if self.at("in"):
            self.advance()
            return "in"
        if self.at("not") and self.tokens[self.index + 1][1] == "in":
            self.index += 2
            return "not in"
        return None

    def _left_assoc(self, ops: frozenset[str], parse_operand: Callable[[], Node]) -> Node:
        node = parse_operand()
        while self.current[0] == "op" and self.current[1] in ops:
            op = self.advance()[1]
            node = Binary(node.pos, op, node, parse_operand())
        return node

    def parse_sum(self) -> Node:
        return self._left_assoc(frozenset({"+", "-"}), self.parse_product)

    def parse_product(self) -> Node:
        return self._left_assoc(frozenset({"*", "/", "%"}), self.parse_unary)

    def parse_unary(self) -> Node:
        if self.at("-"):
            pos = self.advance()[2]
            return Unary(pos, "-", self.parse_unary())
        return self.parse_power()

    def parse_power(self) -> Node:
        base = self.parse_postfix()
        if self.at("**"):
            self.advance()
            return Binary(base.pos, "**", base, self.parse_unary())
        return base

    def parse_postfix(self) -> Node:
        node = self.parse_atom()
        while self.at("."):
            self.advance()
            kind, name, pos = self.advance()
            if kind != "name":
                raise ExpressionError("expected a field name after '.'", pos)
            node = Path(node.pos, (*node.parts, name)) if isinstance(node, Path) else Attr(node.pos, node, name)
        return node

    def parse_atom(self) -> Node:
        kind, value, pos = self.advance()
        if kind == "number":
            try:
                number = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:  # more digits than Python converts (4,300)
                raise ExpressionError(f"number too long ({len(value)} characters)", pos) from None
            if isinstance(number, float) and not math.isfinite(number):  # 1e999: JSON has no infinity
                raise ExpressionError(f"number {value} is too large (not a finite float)", pos)
            return Literal(pos, number)
        if kind == "string":
            return Literal(pos, _unescape(value))
        if kind == "name":
            return self._name(value, pos)
        if value == "(":
            node = self.parse_or()
            self.expect(")")
            return node
        if value == "[":
            return ListExpr(pos, self._items("]"))
        self.index -= 1
        raise ExpressionError(f"expected a value, found {self._describe()}", pos)

    def _name(self, value: str, pos: int) -> Node:
        constants = {"true": True, "false": False, "null": None}
        if value in constants:
            return Literal(pos, constants[value])
        if value in KEYWORDS:
            raise ExpressionError(f"expected a value, found {value!r}", pos)
        if self.at("("):
            self.advance()
            return Call(pos, value, self._items(")"))
        return Path(pos, (value,))

    def _items(self, closing: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.at(closing):
            items.append(self.parse_or())
            if not self.at(closing):
                self.expect(",")
        self.advance()
        return tuple(items)


MAX_DEPTH = 100  # levels of the tree: evaluating, rendering and compiling it recurse once per level


def parse(source: str) -> Node:
    """Parse one expression; raises ExpressionError with the offending offset."""
    if not source.strip():
        raise ExpressionError("empty expression", 0)
    parser = _Parser(source)
    try:
        node = parser.parse()
    except RecursionError:
        at = parser.tokens[min(parser.index, len(parser.tokens) - 1)][2]
        raise ExpressionError("expression nested too deeply", at) from None
    _check_depth(node)
    return node


def _check_depth(root: Node) -> None:
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.pos)
        stack.extend((child, depth + 1) for child in reversed(_children(node)))  # leftmost first


# --- evaluation -------------------------------------------------------------

Scope = Mapping[str, Any]


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else None


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


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts last; numbers and strings each among themselves.
    if value is None:
        return (2, 0)
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


class Evaluator:
    """Evaluates expression trees against a scope of named roots."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def eval(self, node: Node) -> Any:
        method: Callable[[Any], Any] = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def _literal(self, node: Literal) -> Any:
        return node.value

    def _path(self, node: Path) -> Any:
        value: Any = self.scope.get(node.parts[0])
        for name in node.parts[1:]:
            value = _get(value, name)
        return value

    def _attr(self, node: Attr) -> Any:
        return _get(self.eval(node.target), node.name)

    def _listexpr(self, node: ListExpr) -> Any:
        return [self.eval(item) for item in node.items]

    def _unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        if node.op == "not":
            return not value
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ExpressionError(f"'-' needs a number, got {_type_name(value)}", node.pos)
        return -value

    def _binary(self, node: Binary) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        if node.op in COMPARISONS:
            return _compare(node.op, left, right)
        return _arith(node, left, right)

    def _boolop(self, node: BoolOp) -> Any:
        want = node.op == "or"
        for operand in node.operands:
            if bool(self.eval(operand)) is want:
                return want
        return not want

    def _call(self, node: Call) -> Any:
        if node.name in _ITEM_FUNCTIONS:
            return _ITEM_FUNCTIONS[node.name](self, node)
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise ExpressionError(f"unknown function {node.name!r}", node.pos)
        args = [self.eval(arg) for arg in node.args]
        try:
            return function(*args)
        except (TypeError, ValueError, ArithmeticError) as error:
            raise ExpressionError(f"{node.name}(): {error}", node.pos) from error

    def with_item(self, item: Any) -> Evaluator:
        return Evaluator({**self.scope, "item": item})


def _items_of(evaluator: Evaluator, node: Call) -> list[Any]:
    if len(node.args) < 2:
        raise ExpressionError(f"{node.name}() takes a list and at least one expression", node.pos)
    items = evaluator.eval(node.args[0])
    return list(items) if isinstance(items, (list, tuple)) else []


def _filter(evaluator: Evaluator, node: Call) -> list[Any]:
    items = _items_of(evaluator, node)
    return [item for item in items if evaluator.with_item(item).eval(node.args[1])]


def _sort(evaluator: Evaluator, node: Call) -> list[Any]:
    items = _items_of(evaluator, node)

    def key(item: Any) -> tuple[tuple[int, Any], ...]:
        scoped = evaluator.with_item(item)
        return tuple(_sort_key(scoped.eval(arg)) for arg in node.args[1:])

    return sorted(items, key=key)


_ITEM_FUNCTIONS: dict[str, Callable[[Evaluator, Call], Any]] = {"filter": _filter, "sort": _sort}


def _round(value: float, digits: int = 0) -> float | int:
    result = round(value, digits)
    return result if digits else int(result)


def _first(items: Sequence[Any] | None) -> Any:
    return items[0] if items else None


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "round": _round,
    "len": len,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "first": _first,
    "str": _str,
}

#: Functions whose arguments after the first are evaluated once per list item,
#: with that item bound to the name ``item``.
ITEM_FUNCTIONS = frozenset(_ITEM_FUNCTIONS)
ALL_FUNCTIONS = frozenset(FUNCTIONS) | ITEM_FUNCTIONS


def evaluate(node: Node, scope: Scope) -> Any:
    """Evaluate ``node`` with the given roots (facts' fields, ``params``)."""
    return Evaluator(scope).eval(node)


def paths(node: Node) -> list[Path]:
    """Every path the expression reads, in source order."""
    found: list[Path] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Path):
            found.append(current)
        stack.extend(reversed(_children(current)))
    return found


def _children(node: Node) -> list[Node]:
    if isinstance(node, Attr):
        return [node.target]
    if isinstance(node, ListExpr):
        return list(node.items)
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, BoolOp):
        return list(node.operands)
    if isinstance(node, Call):
        return list(node.args)
    return []


def calls(node: Node) -> list[Call]:
    """Every function call in the expression."""
    found: list[Call] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Call):
            found.append(current)
        stack.extend(_children(current))
    return found


def render(node: Node, *, path_text: Callable[[Path], str] | None = None, symbols: dict[str, str] | None = None) -> str:
    """Source-like text of an expression (used in explanations).

    ``path_text`` renders each path (e.g. with its value beside it); ``symbols``
    replaces operators in the output (e.g. ``>=`` by ``≥``)."""
    return _Renderer(path_text or (lambda path: path.dotted), symbols or {}).render(node)


class _Renderer:
    def __init__(self, path_text: Callable[[Path], str], symbols: dict[str, str]) -> None:
        self.path_text = path_text
        self.symbols = symbols

    def render(self, node: Node) -> str:
        if isinstance(node, Literal):
            return _render_literal(node.value)
        if isinstance(node, Path):
            return self.path_text(node)
        if isinstance(node, Attr):
            return f"{self.render(node.target)}.{node.name}"
        if isinstance(node, ListExpr):
            return "[" + ", ".join(self.render(item) for item in node.items) + "]"
        if isinstance(node, Call):
            return f"{node.name}(" + ", ".join(self.render(arg) for arg in node.args) + ")"
        return self._operator(node)

    def _operator(self, node: Node) -> str:
        own = _precedence(node)
        if isinstance(node, Unary):
            operand = self._grouped(node.operand, own, right=False)
            return f"not {operand}" if node.op == "not" else f"-{operand}"
        if isinstance(node, Binary):
            power = node.op == "**"
            left = self._grouped(node.left, own, right=power)
            right = self._grouped(node.right, own, right=not power)
            return f"{left} {self.symbols.get(node.op, node.op)} {right}"
        assert isinstance(node, BoolOp)
        return f" {node.op} ".join(self._grouped(o, own, right=True) for o in node.operands)

    def _grouped(self, node: Node, parent: int, *, right: bool) -> str:
        """``node`` inside an operator of precedence ``parent``, parenthesised only where needed."""
        own = _precedence(node)
        # equal precedence: left-associative operators need parentheses on the right
        # (`a - (b - c)`); `**` on the left; comparisons never chain.
        needed = own < parent or (own == parent and (right or parent == 4))
        return f"({self.render(node)})" if needed else self.render(node)


_BINARY_PRECEDENCE = {"+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "**": 8}


def _precedence(node: Node) -> int:
    if isinstance(node, BoolOp):
        return 1 if node.op == "or" else 2
    if isinstance(node, Unary):
        return 3 if node.op == "not" else 7
    if isinstance(node, Binary):
        return 4 if node.op in COMPARISONS else _BINARY_PRECEDENCE[node.op]
    if isinstance(node, Literal) and isinstance(node.value, (int, float)) and node.value < 0:
        return 7  # renders as a unary minus
    return 9


def _render_literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _str(value)

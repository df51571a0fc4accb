"""Text to tree: the tokenizer and the recursive-descent parser.

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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from service.domain.expr.syntax import (
    COMPARISONS,
    Attr,
    Binary,
    BoolOp,
    Call,
    ListExpr,
    Literal,
    Node,
    Path,
    Unary,
    children,
)
from service.errors import ExpressionError

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


def _number(value: str, pos: int) -> Literal:
    try:
        number = float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:  # more digits than Python converts (4,300)
        raise ExpressionError(f"number too long ({len(value)} characters)", pos) from None
    if isinstance(number, float) and not math.isfinite(number):  # 1e999: JSON has no infinity
        raise ExpressionError(f"number {value} is too large (not a finite float)", pos)
    return Literal(pos, number)


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
            return _number(value, pos)
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
        stack.extend((child, depth + 1) for child in reversed(children(node)))  # leftmost first

"""Tree to source-like text, parenthesised only where precedence needs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from service.domain.expr.evaluate import text_of
from service.domain.expr.syntax import COMPARISONS, Attr, Binary, BoolOp, Call, ListExpr, Literal, Node, Path, Unary


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
        match node:
            case Literal(value=value):
                return _render_literal(value)
            case Path():
                return self.path_text(node)
            case Attr(target=target, name=name):
                return f"{self.render(target)}.{name}"
            case ListExpr(items=items):
                return "[" + self._joined(items) + "]"
            case Call(name=name, args=args):
                return f"{name}(" + self._joined(args) + ")"
            case Unary(op=op, operand=operand):
                text = self._grouped(operand, _precedence(node), right=False)
                return f"not {text}" if op == "not" else f"-{text}"
            case Binary(op=op, left=left, right=right):
                power = op == "**"
                left_text = self._grouped(left, _precedence(node), right=power)
                right_text = self._grouped(right, _precedence(node), right=not power)
                return f"{left_text} {self.symbols.get(op, op)} {right_text}"
            case BoolOp(op=op, operands=operands):
                return f" {op} ".join(self._grouped(o, _precedence(node), right=True) for o in operands)
            case _:
                assert_never(node)

    def _joined(self, nodes: tuple[Node, ...]) -> str:
        return ", ".join(self.render(node) for node in nodes)

    def _grouped(self, node: Node, parent: int, *, right: bool) -> str:
        """``node`` inside an operator of precedence ``parent``, parenthesised only where needed."""
        own = _precedence(node)
        # equal precedence: left-associative operators need parentheses on the right
        # (`a - (b - c)`); `**` on the left; comparisons never chain.
        needed = own < parent or (own == parent and (right or parent == 4))
        return f"({self.render(node)})" if needed else self.render(node)


_BINARY_PRECEDENCE = {"+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "**": 8}


def _precedence(node: Node) -> int:
    match node:
        case BoolOp(op=op):
            return 1 if op == "or" else 2
        case Unary(op=op):
            return 3 if op == "not" else 7
        case Binary(op=op):
            return 4 if op in COMPARISONS else _BINARY_PRECEDENCE[op]
        case Literal(value=int() | float() as value) if value < 0:
            return 7  # renders as a unary minus
        case Literal() | Path() | Attr() | ListExpr() | Call():
            return 9
        case _:
            assert_never(node)


def _render_literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text_of(value)

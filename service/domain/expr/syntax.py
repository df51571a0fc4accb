"""The expression tree: one frozen Struct per node kind, joined in the tagged union ``Node``.

Every walk over the tree (evaluate, render, typecheck, compile, lint) is one
function that ``match``es on these classes and ends in ``assert_never``, so
``mypy`` names each walk that a new node kind has not been taught yet.
"""

from __future__ import annotations

from typing import Any, TypeAlias, assert_never

import msgspec


class NodeBase(msgspec.Struct, frozen=True, tag_field="kind"):
    """Fields shared by every node; ``pos`` is the 0-based offset in the source."""

    pos: int


class Literal(NodeBase, frozen=True, tag="literal"):
    value: Any


class Path(NodeBase, frozen=True, tag="path"):
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class Attr(NodeBase, frozen=True, tag="attr"):
    target: Node
    name: str


class ListExpr(NodeBase, frozen=True, tag="list"):
    items: tuple[Node, ...]


class Unary(NodeBase, frozen=True, tag="unary"):
    op: str
    operand: Node


class Binary(NodeBase, frozen=True, tag="binary"):
    op: str
    left: Node
    right: Node


class BoolOp(NodeBase, frozen=True, tag="boolop"):
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


class Call(NodeBase, frozen=True, tag="call"):
    name: str
    args: tuple[Node, ...]


#: Every node kind; a new kind is added here and then to each walk that mypy points at.
Node: TypeAlias = Literal | Path | Attr | ListExpr | Unary | Binary | BoolOp | Call

COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})


def children(node: Node) -> tuple[Node, ...]:
    """The direct subexpressions of ``node``, left to right."""
    match node:
        case Literal() | Path():
            return ()
        case Attr(target=target):
            return (target,)
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case ListExpr(items=nodes) | BoolOp(operands=nodes) | Call(args=nodes):
            return nodes
        case _:
            assert_never(node)


def paths(node: Node) -> list[Path]:
    """Every path the expression reads, in source order."""
    found: list[Path] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Path):
            found.append(current)
        stack.extend(reversed(children(current)))
    return found


def calls(node: Node) -> list[Call]:
    """Every function call in the expression."""
    found: list[Call] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Call):
            found.append(current)
        stack.extend(children(current))
    return found


def literal_values(items: tuple[Node, ...]) -> list[Any] | None:
    """The values of ``items`` when every one of them is a literal, else None."""
    values: list[Any] = []
    for item in items:
        match item:
            case Literal(value=value):
                values.append(value)
            case _:
                return None
    return values

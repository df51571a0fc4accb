"""The expression language shared by rule conditions and rule outputs.

Text is parsed (``parser``) into a tree of frozen Structs (``syntax``), never
handed to Python's ``eval``; the tree is evaluated (``evaluate``), rendered back
to text (``render``) and typed against a fact schema (``typecheck``), each by
one ``match`` over the node kinds.
"""

from __future__ import annotations

from service.domain.expr.evaluate import ALL_FUNCTIONS, FUNCTIONS, ITEM_FUNCTIONS, Scope, evaluate
from service.domain.expr.parser import KEYWORDS, MAX_DEPTH, Token, parse, tokenize
from service.domain.expr.render import render
from service.domain.expr.syntax import (
    COMPARISONS,
    Attr,
    Binary,
    BoolOp,
    Call,
    ListExpr,
    Literal,
    Node,
    NodeBase,
    Path,
    Unary,
    calls,
    children,
    literal_values,
    paths,
)

__all__ = [
    "ALL_FUNCTIONS",
    "COMPARISONS",
    "FUNCTIONS",
    "ITEM_FUNCTIONS",
    "KEYWORDS",
    "MAX_DEPTH",
    "Attr",
    "Binary",
    "BoolOp",
    "Call",
    "ListExpr",
    "Literal",
    "Node",
    "NodeBase",
    "Path",
    "Scope",
    "Token",
    "Unary",
    "calls",
    "children",
    "evaluate",
    "literal_values",
    "parse",
    "paths",
    "render",
    "tokenize",
]

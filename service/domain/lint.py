"""Warnings about rulesets that load but do not do what their author meant (pure).

Under ``hit_policy: first`` only the highest-priority matching rule decides, so
a rule whose condition implies the condition of a rule above it can never win;
and facts that match no rule at all get no proposal.  Both are reported as
warnings, never errors: the ruleset still serves.

The implication test is deliberately incomplete but sound: it only says "b
implies a" when that holds for every possible fact, in the common cases (an
unconditional rule, identical conditions, bounds on the same fact path,
``and``/``or`` of those).  A missed case is silence, never a false warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from service.domain import expr
from service.domain.fold import fold_params
from service.errors import ExpressionError


class LintedRule(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def order(self) -> int: ...
    @property
    def when(self) -> expr.Node: ...


class Finding(msgspec.Struct, frozen=True):
    rule: int | None  # the ``order`` of the rule concerned; None for the ruleset as a whole
    reason: str


def lint(
    hit_policy: str,
    rules: Sequence[LintedRule],
    params: Mapping[str, Any],
    enums: Mapping[str, Sequence[Any]] | None = None,
) -> list[Finding]:
    """Every warning for one ruleset, rules in file order.

    ``enums`` maps the fact paths that always hold one of a fixed set of values
    (required, enumerated) to that set: rules covering each value of one of them
    are a fallback as good as ``when: true``."""
    if hit_policy != "first" or not rules:
        return []
    conditions = {rule.order: fold_params(rule.when, params) for rule in rules}
    ranked = sorted(rules, key=lambda r: (-r.priority, r.order))
    if len(ranked) > PAIRWISE_LIMIT:
        findings = _shadowed_cheaply(ranked, conditions)
    else:
        texts: dict[int, str] = {}  # one rendering per node for the whole pass (the trees live in conditions)
        findings = [f for i, rule in enumerate(ranked) if (f := _shadowed(rule, ranked[:i], conditions, texts))]
    if not any(_always(c) for c in conditions.values()) and not _exhaustive(conditions.values(), enums or {}):
        findings.append(Finding(None, _NO_FALLBACK))
    return sorted(findings, key=lambda f: -1 if f.rule is None else f.rule)


def _exhaustive(conditions: Iterable[expr.Node], enums: Mapping[str, Sequence[Any]]) -> bool:
    """Do rules of the form ``x == v`` / ``x in [...]`` together cover every value ``x`` can have?"""
    covered: dict[str, set[Any]] = {}
    for condition in conditions:
        finite = _finite_values(condition)
        if finite is not None and finite[0] in enums:
            covered.setdefault(finite[0], set()).update(finite[1])
    return any(set(enums[path]) <= values for path, values in covered.items())


_NO_FALLBACK = (
    "hit_policy 'first' without a fallback: no rule has 'when: true', so facts that match"
    " no rule get no proposal (add an unconditional rule at the lowest priority)"
)


#: Above this many rules, comparing every pair of rules (quadratic) would slow every load and
#: reload by seconds, so only an unconditional rule or an identical condition above counts.
PAIRWISE_LIMIT = 200


def _shadowed(
    rule: LintedRule, above: Sequence[LintedRule], conditions: dict[int, expr.Node], texts: dict[int, str]
) -> Finding | None:
    for winner in above:
        if implies(conditions[rule.order], conditions[winner.order], texts):
            return _finding(rule, winner, conditions)
    return None


def _shadowed_cheaply(ranked: Sequence[LintedRule], conditions: dict[int, expr.Node]) -> list[Finding]:
    findings: list[Finding] = []
    unconditional: LintedRule | None = None
    first_with: dict[str, LintedRule] = {}
    for rule in ranked:
        text = expr.render(conditions[rule.order])
        winner = unconditional or first_with.get(text)
        if winner is not None:
            findings.append(_finding(rule, winner, conditions))
        first_with.setdefault(text, rule)
        if unconditional is None and _always(conditions[rule.order]):
            unconditional = rule
    return findings


def _finding(rule: LintedRule, winner: LintedRule, conditions: dict[int, expr.Node]) -> Finding:
    why = "has no condition" if _always(conditions[winner.order]) else "matches whenever it does"
    return Finding(
        rule.order,
        f"rule {rule.id!r} can never win: rule {winner.id!r} (priority {winner.priority}) ranks above it and {why}",
    )


def _always(node: expr.Node) -> bool:
    match node:
        case expr.Literal(value=True):
            return True
        case _:
            return False


def implies(b: expr.Node, a: expr.Node, texts: dict[int, str] | None = None) -> bool:
    """True only if ``a`` holds for every fact for which ``b`` holds.  ``texts`` keeps each node's
    rendering across calls (keyed by id: only while the nodes are alive)."""
    texts = {} if texts is None else texts
    if _always(a) or _text(a, texts) == _text(b, texts):
        return True
    match a, b:
        case (expr.BoolOp(op="and", operands=parts), _):
            return all(implies(b, part, texts) for part in parts)
        case (_, expr.BoolOp(op=op, operands=parts)) if _some_part_implies(op, parts, a, texts):
            return True
    match a:
        case expr.BoolOp(op="or", operands=parts):
            return any(implies(b, part, texts) for part in parts)
    return _bound_implies(b, a)


def _some_part_implies(op: str, parts: tuple[expr.Node, ...], a: expr.Node, texts: dict[int, str]) -> bool:
    """Does the ``and``/``or`` of ``parts`` imply ``a``: every part of an ``or``, any part of an ``and``?"""
    found = [implies(part, a, texts) for part in parts]
    return all(found) if op == "or" else any(found)


def _text(node: expr.Node, texts: dict[int, str]) -> str:
    text = texts.get(id(node))
    if text is None:
        text = texts[id(node)] = expr.render(node)
    return text


# --- one fact path against constants --------------------------------------------

Bound = tuple[str, str, Any]  # (dotted path, operator, constant), the path on the left

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _bound(node: expr.Node) -> Bound | None:
    match node:
        case expr.Binary(op=op, left=expr.Path() as path, right=expr.Literal(value=value)) if op in _FLIP:
            pass
        case expr.Binary(op=op, left=expr.Literal(value=value), right=expr.Path() as path) if op in _FLIP:
            op = _FLIP[op]
        case _:
            return None
    return None if path.parts[0] == "item" else (path.dotted, op, value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_values(node: expr.Node) -> tuple[str, list[Any]] | None:
    """``x == c`` or ``x in [c1, c2]``: the path and the only values it can then have."""
    bound = _bound(node)
    if bound is not None and bound[1] == "==" and bound[2] is not None:
        return bound[0], [bound[2]]
    match node:
        case expr.Binary(op="in", left=expr.Path() as path, right=expr.ListExpr(items=items)) if items:
            values = expr.literal_values(items)
            if values is not None and all(value is not None for value in values):
                return path.dotted, values
    return None


def _bound_implies(b: expr.Node, a: expr.Node) -> bool:
    finite = _finite_values(b)
    if finite is not None:
        return _holds_for_each(a, *finite)
    b_bound, a_bound = _bound(b), _bound(a)
    if b_bound is None or a_bound is None or b_bound[0] != a_bound[0]:
        return False
    return _range_implies(b_bound[1:], a_bound[1:])


def _holds_for_each(a: expr.Node, path: str, values: list[Any]) -> bool:
    """Evaluate ``a`` with ``path`` set to each value; only when ``a`` reads nothing else."""
    if not all(p.dotted == path for p in expr.paths(a)) or expr.calls(a):
        return False
    try:
        return all(expr.evaluate(a, _scope(path, value)) is True for value in values)
    except ExpressionError:
        return False


def _scope(path: str, value: Any) -> dict[str, Any]:
    scope: Any = value
    for part in reversed(path.split(".")):
        scope = {part: scope}
    return dict(scope)


def _range_implies(b: tuple[str, Any], a: tuple[str, Any]) -> bool:
    """Is the half-line ``x b_op b_value`` inside ``x a_op a_value`` (numbers)?"""
    (b_op, bv), (a_op, av) = b, a
    if not (_number(bv) and _number(av)) or b_op in ("==", "!="):
        return False
    if a_op == "!=":
        # every x in b's half-line differs from av when av lies outside it
        return not expr.evaluate(expr.Binary(0, b_op, expr.Literal(0, av), expr.Literal(0, bv)), {})
    upward = {">": True, ">=": True, "<": False, "<=": False}
    if a_op not in upward or upward[b_op] != upward[a_op]:
        return False
    if b_op == a_op or b_op in (">", "<"):
        return bool(bv >= av) if upward[b_op] else bool(bv <= av)
    # b includes its bound, a excludes its own: b's bound must lie strictly inside a
    return bool(bv > av) if upward[b_op] else bool(bv < av)

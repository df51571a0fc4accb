"""Plain-language explanations of logged decisions, and the source snippets reviewers see.

Pure: works on a decoded log record, the ruleset as it was at that version (when
it can be loaded) and file texts.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.domain import expr
from service.domain.context import MISSING_CONTEXT
from service.domain.decision import FiredRule, Violation, WhyNot, scope
from service.domain.record import DecisionRecord
from service.domain.redaction import is_redacted
from service.domain.ruleset import Rule, Ruleset
from service.errors import ExpressionError

SYMBOLS = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}
_VALUE_WIDTH = 60


def value_text(value: Any) -> str:
    if is_redacted(value):
        return "(redacted)"
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def condition_with_values(node: expr.Node, values: dict[str, Any]) -> str:
    """The condition as written, each fact path followed by its actual value:
    ``process.attempts 3 ≥ params.max_attempts 3``."""
    if isinstance(node, expr.Literal) and node.value is True:
        return "always"

    def path_text(path: expr.Path) -> str:
        if path.parts[0] not in values:  # `item` inside filter()/sort(): no single value
            return path.dotted
        try:
            return f"{path.dotted} {value_text(expr.evaluate(path, values))}"
        except ExpressionError:
            return path.dotted

    return expr.render(node, path_text=path_text, symbols=SYMBOLS)


def rule_sentence(rule: Rule, values: dict[str, Any], won: bool, version: str) -> str:
    where = f"rule {rule.id}, {rule.file}:{rule.line}, version {version[:12]}…"
    sentence = f"{rule.title}: {condition_with_values(rule.when, values)} ({where})."
    return sentence if won else sentence + " It matched, but a rule of higher priority decided."


def _fired_sentence(fired: FiredRule, version: str) -> str:
    # the ruleset of that version could not be loaded: say what the record holds
    where = f"rule {fired.id}, {fired.file}:{fired.line}, version {version[:12]}…"
    return f"{fired.title} ({where})." + ("" if fired.won else " It matched, but did not decide.")


def _violation_sentence(violation: Violation, verb: str) -> str:
    action = violation.action_index
    target = f" action {action}" if action is not None else ""
    where = f" ({violation.location})" if violation.location else ""
    return f"Guardrail {violation.id} ({violation.title}) {verb}{target}: {violation.message}{where}."


def _context_sentences(record: DecisionRecord) -> list[str]:
    sources = record.context if isinstance(record.context, dict) else {}
    return [
        f"The facts' {group} came from {got.source}, fetched at {got.fetched_at} ({got.age_ms:g} ms old when decided)."
        for group, got in sources.items()
    ]


def sentences(record: DecisionRecord, ruleset: Ruleset | None) -> list[str]:
    """One sentence per fired rule, rendered from its title and the actual fact values,
    then one per guardrail verdict, then the outcome."""
    version = record.ruleset.version
    out: list[str] = []
    rules = {rule.id: rule for rule in ruleset.rules} if ruleset else {}
    values = scope(ruleset, record.facts) if ruleset else {}
    out.extend(_context_sentences(record))
    for fired in record.fired_rules:
        rule = rules.get(fired.id)
        out.append(rule_sentence(rule, values, fired.won, version) if rule else _fired_sentence(fired, version))
    if record.proposer:  # a proposal made elsewhere: no rule of the ruleset made it
        out.append(f"{record.proposer.describe()} proposed it; the ruleset's guardrails judged it.")
    elif (record.error or "").startswith(MISSING_CONTEXT):
        out.append(f"The rules were not asked: {record.error}.")
    elif not record.fired_rules:
        out.append("No rule matched these facts.")
    guardrails = record.guardrails
    out.extend(_violation_sentence(v, "denied") for v in guardrails.violations)
    out.extend(_violation_sentence(v, "requires approval for") for v in guardrails.approvals)
    if not guardrails.available and record.proposal is not None:
        out.append(f"The guardrails could not be asked ({guardrails.error or 'no verdict'}).")
    decision, execution = record.decision, record.execution
    out.append(
        f"Decision {decision.decision_type} with confidence {decision.confidence}: {execution.status}. {record.summary}"
    )
    return out


def yaml_block(text: str, line: int) -> tuple[int, str]:
    """The YAML item starting at ``line`` (1-based): that line and every deeper-indented one after it."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return line, ""
    first = lines[line - 1]
    indent = len(first) - len(first.lstrip(" "))
    end = line
    for number in range(line + 1, len(lines) + 1):
        current = lines[number - 1]
        if current.strip() and len(current) - len(current.lstrip(" ")) <= indent:
            break
        if current.strip():
            end = number
    return line, "\n".join(lines[line - 1 : end])


def rego_block(text: str, line: int) -> tuple[int, str]:
    """The Rego rule at ``line`` with the comments (``# METADATA``) right above it."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return line, ""
    start = line
    while start > 1 and lines[start - 2].lstrip().startswith("#"):
        start -= 1
    end, depth, opened = line, 0, False
    for number in range(line, len(lines) + 1):
        current = lines[number - 1]
        depth += current.count("{") - current.count("}")
        opened = opened or "{" in current
        end = number
        if depth <= 0 and (opened or number == line):
            break
    return start, "\n".join(lines[start - 1 : end])


def why_not(ruleset: Ruleset, facts: dict[str, Any], fired: set[str]) -> list[WhyNot]:
    """One entry per rule that did not fire, in priority order."""
    values = scope(ruleset, facts)
    return [_why_not(rule, values) for rule in ruleset.rules if rule.id not in fired]


def _why_not(rule: Rule, values: dict[str, Any]) -> WhyNot:
    node = rule.when
    conditions = node.operands if isinstance(node, expr.BoolOp) and node.op == "and" else (node,)
    for condition in conditions:
        try:
            held = bool(expr.evaluate(condition, values))
            failure = "was false"
        except ExpressionError as error:
            held, failure = False, f"could not be evaluated ({error.reason})"
        if not held:
            return _entry(rule, condition, values, failure)
    # every condition holds for these values, yet the rule did not match: report the whole condition
    return _entry(rule, node, values, "held, but the rule did not match")


def _entry(rule: Rule, condition: expr.Node, values: dict[str, Any], failure: str) -> WhyNot:
    read: dict[str, Any] = {}
    for path in expr.paths(condition):
        if path.parts[0] in values and path.dotted not in read:
            try:
                read[path.dotted] = expr.evaluate(path, values)
            except ExpressionError:
                read[path.dotted] = None
    text = expr.render(condition)
    shown = ", ".join(f"{name} = {value_text(value)}" for name, value in read.items())
    reason = f"{rule.id}: {text} {failure}" + (f" ({shown})" if shown else "")
    return WhyNot(rule.id, rule.title, rule.file, rule.line, text, read, reason)


def split_location(location: str) -> tuple[str, int] | None:
    path, _, line = location.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else None

"""Ruleset files (``rules/*.yaml``): their format, and loading them into compiled rules.

Pure: reads text, never touches the engine or OPA.  Every problem is reported
as file:line:column, all of them at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path as FsPath
from typing import Literal

import msgspec

from service.adapters.rules_engine.compile import Compiled, compile_condition
from service.authoring.yamlsrc import Key, Source, SyntaxProblem, dotted, load, validation_problem
from service.domain import expr
from service.domain.expr.typecheck import type_mismatches
from service.domain.lint import lint
from service.domain.schema import FactDecoder, FieldSpec
from service.errors import ExpressionError, Problem, RulesetInvalid

Value = str | int | float | bool | None
DEFAULT_APPROVAL_EXPIRY_S = 3600.0
MAX_APPROVAL_EXPIRY_S = 10 * 365 * 86400  # ten years: an expiry time must stay a date the log can write
Autonomy = Literal["L0", "L1", "L2", "L3", "L4"]


# --- the file format ----------------------------------------------------------


class ThenSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: str
    confidence: Value
    autonomy: Autonomy
    actions: list[dict[str, Value]] = []


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    title: str
    when: Value
    then: ThenSpec
    priority: int = 0
    description: str = ""


class PriorityCase(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: str
    when: Value = True


class EscalationSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a decision becomes when guardrails deny it or cannot be asked."""

    decision: str
    autonomy: Autonomy = "L0"
    action: dict[str, Value] = {}


class RulesetSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    agent: str
    description: str
    owner: str
    facts: dict[str, FieldSpec]
    rules: list[RuleSpec]
    escalation: EscalationSpec
    hit_policy: Literal["first", "collect"] = "first"
    params: dict[str, Value] = {}
    priority: list[PriorityCase] = []


# --- the compiled form --------------------------------------------------------


class Output(msgspec.Struct, frozen=True):
    """An output expression with the text it was written as."""

    text: str
    node: expr.Node


class CompiledAction(msgspec.Struct, frozen=True):
    type: str
    fields: tuple[tuple[str, Output], ...]


class Rule(msgspec.Struct, frozen=True):
    id: str
    title: str
    description: str
    priority: int
    order: int  # position in the file: breaks priority ties
    file: str
    line: int
    when_text: str
    when: expr.Node
    compiled: Compiled
    decision: str
    confidence: Output
    autonomy: str
    actions: tuple[CompiledAction, ...]


class Ruleset(msgspec.Struct, frozen=True):
    name: str
    agent: str
    description: str
    owner: str
    file: str
    version: str
    hit_policy: str
    params: dict[str, Value]
    facts: dict[str, FieldSpec]
    rules: tuple[Rule, ...]
    priority: tuple[tuple[expr.Node, str], ...]
    escalation_decision: str
    escalation_autonomy: str
    escalation_action: CompiledAction
    decoder: FactDecoder
    warnings: tuple[Problem, ...] = ()  # see service/domain/lint.py: they never stop a ruleset from serving


# --- loading ------------------------------------------------------------------


def content_hash(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over (path, sha256(content)) of each file, in path order."""
    digest = hashlib.sha256()
    for path, content in sorted(files):
        digest.update(f"{path}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    return digest.hexdigest()


def approval_expiry_s(params: dict[str, Value]) -> float:
    """How long a decision of this ruleset waits for a person before it expires and is escalated:
    the ``approval_expiry_s`` param (seconds), else one hour."""
    value = params.get("approval_expiry_s")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else DEFAULT_APPROVAL_EXPIRY_S


def load_ruleset(path: FsPath, display: str, policy_files: list[tuple[str, bytes]]) -> Ruleset:
    """Load and compile one ruleset file; raises RulesetInvalid listing every problem."""
    return parse_ruleset(path.read_bytes(), display, policy_files)


def parse_ruleset(
    content: bytes, display: str, policy_files: list[tuple[str, bytes]], hashed_as: str | None = None
) -> Ruleset:
    """Compile a ruleset from its bytes; its version hashes them as ``hashed_as`` (default ``display``)
    together with ``policy_files``, so a stored copy of the files gives back the same version."""
    try:
        source = load(content.decode("utf-8"), display)
    except SyntaxProblem as error:
        raise RulesetInvalid(f"{display}: invalid ruleset", [error.problem]) from None
    except UnicodeDecodeError as error:
        raise RulesetInvalid(str(error), [Problem("file is not UTF-8", file=display, line=1, column=1)]) from None
    try:
        spec = msgspec.convert(source.data, RulesetSpec)
    except msgspec.ValidationError as error:
        raise RulesetInvalid(f"{display}: invalid ruleset", [validation_problem(source, error)]) from None
    version = content_hash([(hashed_as or display, content), *policy_files])
    builder = _Builder(source, spec)
    ruleset = builder.build(version)
    if builder.problems:
        raise RulesetInvalid(f"{display}: invalid ruleset", builder.problems)
    return msgspec.structs.replace(ruleset, warnings=tuple(_warnings(source, ruleset)))


def _warnings(source: Source, ruleset: Ruleset) -> list[Problem]:
    findings = lint(ruleset.hit_policy, ruleset.rules, ruleset.params, dict(_enum_paths(ruleset.facts)))
    return [
        source.problem(("rules",), f.reason, at_key=True, severity="warning")
        if f.rule is None
        else source.problem(("rules", f.rule, "when"), f.reason, severity="warning")
        for f in findings
    ]


class _Builder:
    def __init__(self, source: Source, spec: RulesetSpec) -> None:
        self.source = source
        self.spec = spec
        self.problems: list[Problem] = []
        self.roots = set(spec.facts) | {"params"}
        self.nullable = frozenset(_nullable_paths(spec.facts))

    def build(self, version: str) -> Ruleset:
        spec = self.spec
        self._check_names()
        rules = tuple(self._rule(i, rule) for i, rule in enumerate(spec.rules))
        priority = tuple(
            (self._expression(("priority", i, "when"), case.when), case.value) for i, case in enumerate(spec.priority)
        )
        escalation = self._action(("escalation", "action"), {"type": "", **spec.escalation.action})
        return Ruleset(
            name=spec.name,
            agent=spec.agent,
            description=spec.description,
            owner=spec.owner,
            file=self.source.file,
            version=version,
            hit_policy=spec.hit_policy,
            params=dict(spec.params),
            facts=dict(spec.facts),
            rules=rules,
            priority=priority,
            escalation_decision=spec.escalation.decision,
            escalation_autonomy=spec.escalation.autonomy,
            escalation_action=escalation,
            decoder=FactDecoder(spec.name, dict(spec.facts)),
        )

    def _check_names(self) -> None:
        if not self.spec.rules:
            self.problems.append(self.source.problem(("rules",), "a ruleset needs at least one rule"))
        seen: set[str] = set()
        for index, rule in enumerate(self.spec.rules):
            if rule.id in seen:
                self.problems.append(self.source.problem(("rules", index, "id"), f"duplicate rule id {rule.id!r}"))
            seen.add(rule.id)
        if "params" in self.spec.facts or "item" in self.spec.facts:
            self.problems.append(self.source.problem(("facts",), "'params' and 'item' are reserved names"))
        expiry = self.spec.params.get("approval_expiry_s", DEFAULT_APPROVAL_EXPIRY_S)
        if isinstance(expiry, bool) or not isinstance(expiry, int | float) or not expiry > 0:
            reason = "approval_expiry_s is the seconds a decision waits for approval: a number greater than 0"
            self.problems.append(self.source.problem(("params", "approval_expiry_s"), reason))
        elif not expiry <= MAX_APPROVAL_EXPIRY_S:
            reason = f"approval_expiry_s is at most {MAX_APPROVAL_EXPIRY_S} seconds (ten years)"
            self.problems.append(self.source.problem(("params", "approval_expiry_s"), reason))

    def _rule(self, index: int, rule: RuleSpec) -> Rule:
        key: Key = ("rules", index)
        when = self._expression((*key, "when"), rule.when)
        then = rule.then
        compiled = self._compile((*key, "when"), when, f"r{index}_")
        return Rule(
            id=rule.id,
            title=rule.title,
            description=rule.description,
            priority=rule.priority,
            order=index,
            file=self.source.file,
            line=self.source.locate(key).line,
            when_text=_text(rule.when),
            when=when,
            compiled=compiled,
            decision=then.decision,
            confidence=Output(_text(then.confidence), self._expression((*key, "then", "confidence"), then.confidence)),
            autonomy=then.autonomy,
            actions=tuple(self._action((*key, "then", "actions", i), a) for i, a in enumerate(then.actions)),
        )

    def _compile(self, key: Key, node: expr.Node, prefix: str) -> Compiled:
        try:
            return compile_condition(node, self.spec.params, prefix, self.nullable)
        except ExpressionError as error:
            self._expression_problem(key, error)
            return Compiled({})

    def _action(self, key: Key, action: dict[str, Value]) -> CompiledAction:
        kind = action.get("type")
        if not isinstance(kind, str):
            self.problems.append(self.source.problem(key, "an action needs a literal 'type'"))
            kind = ""
        fields = tuple(
            (name, Output(_text(value), self._expression((*key, name), value)))
            for name, value in action.items()
            if name != "type"
        )
        return CompiledAction(kind, fields)

    def _expression(self, key: Key, value: Value) -> expr.Node:
        if not isinstance(value, str):
            return expr.Literal(0, value)
        try:
            node = expr.parse(value)
        except ExpressionError as error:
            self._expression_problem(key, error)
            return expr.Literal(0, None)
        self._check_references(key, node)
        return node

    def _check_references(self, key: Key, node: expr.Node) -> None:
        before = len(self.problems)
        item_scopes = _item_scoped_paths(node)
        for path in expr.paths(node):
            root = path.parts[0]
            if root == "item" and id(path) in item_scopes:
                continue
            if root not in self.roots:
                self._at(key, path.pos, f"unknown name {root!r} (facts are: {', '.join(sorted(self.spec.facts))})")
            elif root == "params" and (len(path.parts) != 2 or path.parts[1] not in self.spec.params):
                self._at(key, path.pos, f"unknown param {path.dotted!r}")
            elif root != "params" and not _schema_has(self.spec.facts, path.parts):
                self._at(key, path.pos, f"unknown fact path {path.dotted!r}")
        for call in expr.calls(node):
            if call.name not in expr.ALL_FUNCTIONS:
                known = ", ".join(sorted(expr.ALL_FUNCTIONS))
                self._at(key, call.pos, f"unknown function {call.name!r} (known: {known})")
        if len(self.problems) == before:  # types only mean something once every name resolves
            for offset, reason in type_mismatches(node, self.spec.facts, self.spec.params):
                self._at(key, offset, reason)

    def _expression_problem(self, key: Key, error: ExpressionError) -> None:
        self._at(key, error.offset, error.reason)

    def _at(self, key: Key, offset: int, reason: str) -> None:
        mark = self.source.expression_mark(key, offset)
        self.problems.append(
            Problem(reason, path=dotted(key), file=self.source.file, line=mark.line, column=mark.column)
        )


def _text(value: Value) -> str:
    return value if isinstance(value, str) else expr.render(expr.Literal(0, value))


def _schema_has(fields: dict[str, FieldSpec], parts: tuple[str, ...]) -> bool:
    spec = fields.get(parts[0])
    for name in parts[1:]:
        if spec is None or spec.type != "object" or not spec.fields:
            return False
        spec = spec.fields.get(name)
    return spec is not None


def _enum_paths(fields: dict[str, FieldSpec], prefix: str = "") -> list[tuple[str, list[Value]]]:
    """The fact paths that always hold one of their enum's values (required all the way down)."""
    found: list[tuple[str, list[Value]]] = []
    for name, spec in fields.items():
        if not spec.required:
            continue
        if spec.enum and all(isinstance(v, (str, int, float, bool)) for v in spec.enum):
            found.append((f"{prefix}{name}", list(spec.enum)))
        if spec.type == "object" and spec.fields:
            found.extend(_enum_paths(spec.fields, f"{prefix}{name}."))
    return found


def _nullable_paths(fields: dict[str, FieldSpec], prefix: str = "", inherited: bool = False) -> list[str]:
    found: list[str] = []
    for name, spec in fields.items():
        path = f"{prefix}{name}"
        nullable = inherited or not spec.required
        if nullable:
            found.append(path)
        if spec.fields:
            found.extend(_nullable_paths(spec.fields, path + ".", nullable))
    return found


def _item_scoped_paths(node: expr.Node) -> set[int]:
    """ids of the paths that sit where ``item`` is bound (filter/sort arguments)."""
    scoped: set[int] = set()
    for call in expr.calls(node):
        if call.name in expr.ITEM_FUNCTIONS:
            for arg in call.args[1:]:
                scoped.update(id(p) for p in expr.paths(arg))
    return scoped

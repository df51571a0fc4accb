"""Building rulesets from their files (``rules/*.yaml``): every problem reported as
file:line:column, all of them at once.

Reads text, never touches the engine or OPA; the model it builds is service/domain/ruleset.py.
"""

from __future__ import annotations

from pathlib import Path as FsPath

import msgspec

from service.authoring.yamlsrc import Key, Source, SyntaxProblem, dotted, load, validation_problem
from service.domain import expr
from service.domain.context import Provider, build_provider, provider_problems, request_fields
from service.domain.expr.typecheck import type_mismatches
from service.domain.fold import fold_params
from service.domain.lint import lint
from service.domain.redaction import redacted_rule_warnings
from service.domain.ruleset import (
    DEFAULT_APPROVAL_EXPIRY_S,
    MAX_APPROVAL_EXPIRY_S,
    CompiledAction,
    Output,
    Rule,
    Ruleset,
    RulesetSpec,
    RuleSpec,
    Value,
    content_hash,
)
from service.domain.schema import FactDecoder, FieldSpec, sibling_bound_problems
from service.errors import ExpressionError, Problem, RulesetInvalid


def load_ruleset(path: FsPath, display: str, policy_files: list[tuple[str, bytes]]) -> Ruleset:
    """Load and build one ruleset file; raises RulesetInvalid listing every problem."""
    return parse_ruleset(path.read_bytes(), display, policy_files)


def parse_ruleset(
    content: bytes, display: str, policy_files: list[tuple[str, bytes]], hashed_as: str | None = None
) -> Ruleset:
    """Build a ruleset from its bytes; its version hashes them as ``hashed_as`` (default ``display``)
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
    ] + [
        source.problem(("rules", index, "id"), reason, severity="warning")
        for index, reason in redacted_rule_warnings(ruleset)
    ]


class _Builder:
    def __init__(self, source: Source, spec: RulesetSpec) -> None:
        self.source = source
        self.spec = spec
        self.problems: list[Problem] = []
        self.roots = set(spec.facts) | {"params"}

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
            decoder=FactDecoder(spec.name, request_fields(dict(spec.facts), set(spec.context))),
            redact=self._redact(),
            context=self._context(),
        )

    def _context(self) -> dict[str, Provider]:
        """The ``context:`` providers; each problem located in its block (service/domain/context.py)."""
        built: dict[str, Provider] = {}
        for group, spec in self.spec.context.items():
            problems = provider_problems(group, spec, self.spec.facts, set(self.spec.context), tuple(self.spec.redact))
            for field, offset, reason in problems:
                key: Key = ("context", group, field) if field else ("context", group)
                if field == "http":
                    self._at(key, offset, reason)
                else:
                    self.problems.append(self.source.problem(key, reason, at_key=not field))
            if not problems:
                built[group] = build_provider(self.spec.name, group, spec, self.spec.facts)
        return built

    def _redact(self) -> tuple[str, ...]:
        """The ``redact:`` paths; each must name a field of the fact schema (objects only on the way)."""
        for index, path in enumerate(self.spec.redact):
            if not path or not _schema_has(self.spec.facts, tuple(path.split("."))):
                reason = f"redact path {path!r} is not in the facts schema"
                self.problems.append(self.source.problem(("redact", index), reason))
        return tuple(dict.fromkeys(self.spec.redact))

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
        for key, reason in sibling_bound_problems(self.spec.facts, ("facts",)):
            self.problems.append(self.source.problem(key, reason))
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
        self._check_folding((*key, "when"), when)
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
            decision=then.decision,
            confidence=Output(_text(then.confidence), self._expression((*key, "then", "confidence"), then.confidence)),
            autonomy=then.autonomy,
            actions=tuple(self._action((*key, "then", "actions", i), a) for i, a in enumerate(then.actions)),
        )

    def _check_folding(self, key: Key, node: expr.Node) -> None:
        """The rules engine folds each condition's constants when it loads it: one that cannot be
        computed (``1 / 0``) is reported here, where it is written."""
        try:
            fold_params(node, self.spec.params)
        except ExpressionError as error:
            self._expression_problem(key, error)

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


def _item_scoped_paths(node: expr.Node) -> set[int]:
    """ids of the paths that sit where ``item`` is bound (filter/sort arguments)."""
    scoped: set[int] = set()
    for call in expr.calls(node):
        if call.name in expr.ITEM_FUNCTIONS:
            for arg in call.args[1:]:
                scoped.update(id(p) for p in expr.paths(arg))
    return scoped

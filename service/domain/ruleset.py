"""Rulesets: the format of ``rules/*.yaml`` and the built form the engine and decisions use.

Pure.  Building a ruleset from its file, with every problem at file:line:column,
is service/authoring/rulesets.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

import msgspec

from service.domain import expr
from service.domain.context import Provider, ProviderSpec
from service.domain.schema import FactDecoder, FieldSpec
from service.errors import Problem

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
    redact: list[str] = []  # fact paths the log stores as keyed hashes (service/domain/redaction.py)
    context: dict[str, ProviderSpec] = {}  # providers of fact groups a request may leave out (domain/context.py)


# --- the built form ----------------------------------------------------------


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
    redact: tuple[str, ...] = ()  # fact paths the log stores as keyed hashes (service/domain/redaction.py)
    context: dict[str, Provider] = {}  # by group: where a group the request leaves out is fetched from


# --- what follows from a ruleset ----------------------------------------------


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


def nullable_paths(fields: dict[str, FieldSpec], prefix: str = "", inherited: bool = False) -> list[str]:
    """The fact paths that may be null: optional fields and everything below them."""
    found: list[str] = []
    for name, spec in fields.items():
        path = f"{prefix}{name}"
        nullable = inherited or not spec.required
        if nullable:
            found.append(path)
        if spec.fields:
            found.extend(nullable_paths(spec.fields, path + ".", nullable))
    return found

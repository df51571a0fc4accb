"""What one decision answers: the decision, its facts, its log id and its explanation (the shape of
``/decide``, ``/v1/policy/evaluate`` and ``opsgate decide``), and the time-ordered ids decisions get."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import msgspec

from service.domain import decision as dec
from service.domain.context import ContextSource
from service.domain.decision import FiredRule, GuardrailsReport, Proposal, RulesetRef, WhyNot


class Explanation(msgspec.Struct, frozen=True):
    ruleset: RulesetRef
    fired_rules: list[FiredRule]
    proposal: Proposal | None
    guardrails: GuardrailsReport
    summary: str
    error: str | None = None
    not_fired: list[WhyNot] | msgspec.UnsetType = msgspec.UNSET  # only with ?explain=full
    context: dict[str, ContextSource] | msgspec.UnsetType = msgspec.UNSET  # the groups fetched, by group


class Result(msgspec.Struct, frozen=True):
    decision: dec.Decision
    context: dict[str, Any]
    execution: dec.Execution
    decision_log_id: int
    run_id: str
    decision_id: str
    explanation: Explanation


class DecisionResponse(msgspec.Struct, frozen=True):
    """What one decide call returns: the ruleset's agent and the result (``service.http.envelope`` wraps it)."""

    agent: str
    result: Result


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7)."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))

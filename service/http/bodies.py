"""Request bodies as typed values: JSON decoded here, 400 when malformed, 422 naming the wrong field.

A decision's facts are decoded by its ruleset's FactDecoder (their schema is the ruleset's); every
other body (an approval, an outcome, a batch's envelope) by a Struct of this module.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from service.domain.limits import JsonLimits
from service.domain.proposed import ExternalDecision, ProposedDecision, Proposer
from service.domain.record import OutcomeStatus
from service.domain.ruleset import Ruleset
from service.domain.schema import decoded, facts_problem
from service.errors import InvalidBody, InvalidFacts, OpsgateError, PayloadTooLarge, Problem

T = TypeVar("T")

MAX_BATCH = 1000  # items in one POST /decide/batch


class ApprovalRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class OutcomeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: OutcomeStatus
    detail: str = ""


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    items: list[msgspec.Raw]


# POST /v1/policy/evaluate's body; its facts are decoded by the ruleset's own schema (``evaluate_facts``).
# A comment, not a docstring: msgspec would publish a docstring as the schema's description.
class EvaluateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ruleset: str
    facts: msgspec.Raw
    proposal: ProposedDecision
    proposer: Proposer


def decode_body(body: bytes, kind: type[T], what: str) -> T:
    """A request body other than facts (a batch, an outcome, an approval): 422 ``invalid_request`` naming the field."""

    def invalid(error: msgspec.ValidationError) -> InvalidBody:
        problem = facts_problem(str(error))
        return InvalidBody(f"invalid {what}: {problem.path}: {problem.reason}", [problem])

    def decode(raw: bytes) -> T:
        return msgspec.json.decode(raw, type=kind)

    return decoded(decode, body, invalid)


def approval_request(body: bytes) -> ApprovalRequest:
    """``{"reason": "..."}``: 422 naming the field when it is missing, empty or of the wrong type."""
    request = decode_body(body, ApprovalRequest, "approval")
    if not request.reason.strip():
        reason = "blank: say why"
        raise InvalidBody(f"invalid approval: reason: {reason}", [Problem(reason, path="reason")])
    return request


def outcome_request(body: bytes) -> OutcomeRequest:
    """``{"status": "SUCCEEDED" | "FAILED" | "CANCELLED", "detail": "..."}``."""
    return decode_body(body, OutcomeRequest, "outcome")


def batch_items(body: bytes) -> list[msgspec.Raw]:
    """``{"items": [...]}`` with 1 to MAX_BATCH items, each left undecoded for its ruleset."""
    items = decode_body(body, BatchRequest, "batch").items
    if not items:
        raise InvalidBody(f"invalid batch: items: empty; send 1 to {MAX_BATCH} items", [_items_problem("empty")])
    if len(items) > MAX_BATCH:
        reason = f"{len(items)} items; at most {MAX_BATCH} per batch"
        raise PayloadTooLarge(f"batch too large: {reason}", [_items_problem(reason)])
    return items


def _items_problem(reason: str) -> Problem:
    return Problem(reason, path="items")


def batch_facts(ruleset: Ruleset, items: list[msgspec.Raw], limits: JsonLimits) -> list[dict[str, Any] | OpsgateError]:
    """Each of a batch's ``items`` (``batch_items``) as ``ruleset``'s facts, or its error in place (a bad
    item spoils only itself)."""
    return [_item_facts(ruleset, raw, limits, index) for index, raw in enumerate(items)]


def _item_facts(ruleset: Ruleset, raw: msgspec.Raw, limits: JsonLimits, index: int) -> dict[str, Any] | OpsgateError:
    try:
        limits.check(memoryview(raw), prefix=f"items[{index}]")
        return ruleset.decoder.decode_json(raw)
    except OpsgateError as error:
        return error


def evaluate_request(body: bytes) -> EvaluateRequest:
    """The envelope of a proposal to guard: 422 naming the field (``proposal.confidence``, ...)."""
    return decode_body(body, EvaluateRequest, "proposal")


def evaluate_facts(ruleset: Ruleset, request: EvaluateRequest) -> dict[str, Any]:
    """The proposal's ``facts`` by ``ruleset``'s schema: 422 ``invalid_facts`` as /decide's, under ``facts``."""
    try:
        return ruleset.decoder.decode_json(request.facts)
    except InvalidFacts as error:
        problems = [msgspec.structs.replace(p, path=_under("facts", p.path)) for p in error.problems]
        first = problems[0] if problems else Problem(error.message, path="facts")
        raise InvalidFacts(f"invalid facts: {first.path}: {first.reason}", problems) from None


def _under(parent: str, path: str) -> str:
    return parent if path in ("", "$") else f"{parent}.{path}"


def external_decision(body: bytes) -> ExternalDecision:
    """A decision made elsewhere, to record (``POST /v1/policy/decisions``): 422 naming the field."""
    return decode_body(body, ExternalDecision, "decision")

"""What opsgate answers, around what the use cases return: the decision envelope, a batch's, an error's.

Free of the web framework, so ``opsgate decide`` prints the very bytes POST /decide answers.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service.errors import OpsgateError, Problem
from service.usecases.answer import DecisionResponse, Result


# The body of a decision (POST /decide, each decided batch item, ``opsgate decide``).  A comment, not a
# docstring: msgspec would publish a docstring as the schema's description.
class DecisionEnvelope(msgspec.Struct, frozen=True):
    agent: str
    result: Result
    status: str = "success"


def envelope(response: DecisionResponse) -> DecisionEnvelope:
    return DecisionEnvelope(response.agent, response.result)


def batch_envelope(results: list[DecisionResponse | OpsgateError]) -> dict[str, Any]:
    """A batch's answer: the counts, then each item's decision or error body in the items' order."""
    decided = sum(not isinstance(r, OpsgateError) for r in results)
    items = [item_error(r) if isinstance(r, OpsgateError) else envelope(r) for r in results]
    return {"status": "success", "count": len(results), "decided": decided, "errors": len(results) - decided,
            "results": items}  # fmt: skip


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message, "details": details or []}}


def _problem(problem: Problem) -> dict[str, Any]:
    detail: dict[str, Any] = {"path": problem.path, "reason": problem.reason}
    if problem.file:  # a ruleset or policy problem: where, as `opsgate check` prints it
        detail.update(file=problem.file, line=problem.line, column=problem.column,
                      severity=problem.severity, message=str(problem))  # fmt: skip
    return detail


def item_error(error: OpsgateError) -> dict[str, Any]:
    """The body a single request failing with ``error`` gets; a batch item's error entry too."""
    return error_body(error.code, error.message, [_problem(p) for p in error.problems])

"""The OpenAPI description of every JSON route, in one place: request bodies, success bodies and the
error answers each route can give, so tools (schemathesis in tests/fuzz) can check the service against it.

The decide routes read their body raw (one msgspec decode against the ruleset's own fact schema), so
Litestar sees no ``data`` parameter and would describe neither body nor answer.  ``document`` sets each
handler's ``responses`` and an ``operation_class`` that fills in the request body, from the msgspec
JSON Schema of the very types the service encodes and decodes: query strings inlined, answers as
``$ref`` to named schemas that the served document adds (http/apidoc.py, with each ruleset's facts),
as Litestar replaces the document's components with its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import msgspec
from litestar.enums import ParamType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Operation, Parameter, RequestBody
from litestar.openapi.spec.media_type import OpenAPIMediaType
from litestar.openapi.spec.response import OpenAPIResponse

from service.domain.checkpoint import Proof
from service.domain.proposed import ExternalDecision
from service.domain.record import DecisionQuery
from service.errors import Problem
from service.http.bodies import MAX_BATCH, ApprovalRequest, EvaluateRequest, OutcomeRequest
from service.http.envelope import DecisionEnvelope
from service.http.evaluate import EvaluationEnvelope
from service.http.limits import UNLIMITED_PREFIXES
from service.http.media import takes_json
from service.http.queries import DashboardQuery, PendingQuery, ProofQuery


class ErrorInfo(msgspec.Struct, frozen=True):
    code: str
    message: str
    details: list[Problem]


class ErrorResponse(msgspec.Struct, frozen=True):
    status: Literal["error"]
    error: ErrorInfo


class DecisionResponse(DecisionEnvelope, frozen=True):
    pass  # the published name of the decision body


class EvaluationResponse(EvaluationEnvelope, frozen=True):
    pass  # the published name of a guarded proposal's body


class BatchResponse(msgspec.Struct, frozen=True):
    status: Literal["success"]
    count: int
    decided: int
    errors: int
    results: list[Any]  # each a DecisionResponse or an ErrorResponse, in the order of the items (components)


REF = "#/components/schemas/{name}"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


_RESPONSES = (DecisionResponse, ErrorResponse, BatchResponse, EvaluationResponse)
_DECISION, _ERROR, _BATCH_RESULTS, _EVALUATION = (ref(kind.__name__) for kind in _RESPONSES)


def components(*kinds: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The document's named schemas: the answers' and those of ``kinds`` (each ruleset's facts), with
    the ``$ref`` of each of ``kinds``; what Litestar's own components would hold is inlined instead."""
    refs, schemas = msgspec.json.schema_components((*_RESPONSES, *kinds), ref_template=REF)
    schemas["BatchResponse"]["properties"]["results"]["items"] = {"anyOf": [_DECISION, _ERROR]}
    return list(refs[len(_RESPONSES) :]), schemas


def json_schema(kind: Any) -> dict[str, Any]:
    """msgspec's JSON Schema for ``kind`` with every ``$ref`` replaced by its definition."""
    schema = msgspec.json.schema(kind)
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"recursive type {name} cannot be inlined")
            return inline(definitions[name], (*seen, name))
        return {key: inline(value, seen) for key, value in node.items()}

    return cast(dict[str, Any], inline(schema, ()))


# The generic routes take any ruleset's facts; the served document (http/apidoc.py) gives the default
# ruleset's and /run's their schema, and adds a route of its own to each loaded ruleset.
_FACTS = {"type": "object", "description": "The facts, as the ruleset's fact schema declares them."}


def batch_body(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": facts, "minItems": 1, "maxItems": MAX_BATCH}},
        "required": ["items"],
        "additionalProperties": False,
    }


_BATCH = batch_body(_FACTS)
_OBJECT = {"type": "object"}
_TEXT = {"type": "string"}

REASONS = {
    400: "Malformed request: not JSON, or a bad query parameter (malformed_request, bad_request)",
    401: "No API key, or an unknown one (unauthorized); only when keys are configured",
    403: "The key lacks the route's role (forbidden, separation_of_duties)",
    404: "No such ruleset, decision or version (unknown_ruleset, not_found, ...)",
    409: "Conflicts with the current state (conflict, already_decided, not_pending, expired, ...)",
    413: "Body over the size limit, or a list over its limit (payload_too_large)",
    415: "A POST without Content-Type: application/json (unsupported_media_type)",
    422: "Well-formed but invalid: facts, body or ruleset (invalid_facts, invalid_request, json_too_deep, ...)",
    429: "The caller's rate is used up; see Retry-After (rate_limited)",
    503: "Overloaded: retry after Retry-After (overloaded), timed out (request_timeout), or a dependency is down "
    "(decision_log_error, ...)",
}


@dataclass(frozen=True)
class Doc:
    """One route's description: its request body, success status and body, and extra error statuses."""

    body: dict[str, Any] | None = None
    ok: dict[str, Any] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"
    query: dict[str, Any] | None = None  # the JSON Schema of the query string: one parameter a property


_BODY_ERRORS = (413, 422)


def _evaluate_body() -> dict[str, Any]:
    """``EvaluateRequest``'s schema, its undecoded ``facts`` described as the generic routes' facts."""
    schema = json_schema(EvaluateRequest)
    schema["properties"]["facts"] = _FACTS
    return schema


_EXPLAIN = {
    "type": "object",
    "properties": {"explain": {"enum": ["full"], "description": "also say why each other rule did not fire"}},
}
DOCS: dict[tuple[str, str], Doc] = {
    ("POST", "/decide"): Doc(_FACTS, _DECISION, errors=(404, *_BODY_ERRORS), query=_EXPLAIN),
    ("POST", "/decide/{ruleset:str}"): Doc(_FACTS, _DECISION, errors=(404, *_BODY_ERRORS), query=_EXPLAIN),
    ("POST", "/run"): Doc(_FACTS, _DECISION, errors=(404, *_BODY_ERRORS), query=_EXPLAIN),
    ("GET", "/decisions"): Doc(ok=_OBJECT, query=json_schema(DecisionQuery)),
    ("POST", "/v1/policy/evaluate"): Doc(_evaluate_body(), _EVALUATION, errors=(404, *_BODY_ERRORS)),
    ("POST", "/v1/policy/decisions"): Doc(json_schema(ExternalDecision), _OBJECT, 201, errors=_BODY_ERRORS),
    ("GET", "/v1/policy/decisions"): Doc(ok=_OBJECT, query=json_schema(DecisionQuery)),
    ("GET", "/operations/decisions/pending"): Doc(ok=_OBJECT, query=json_schema(PendingQuery)),
    ("GET", "/dashboard"): Doc(ok=_OBJECT, query=json_schema(DashboardQuery)),
    ("POST", "/decide/batch"): Doc(_BATCH, _BATCH_RESULTS, errors=(404, *_BODY_ERRORS)),
    ("POST", "/decide/{ruleset:str}/batch"): Doc(_BATCH, _BATCH_RESULTS, errors=(404, *_BODY_ERRORS)),
    ("POST", "/decisions/{decision_id:str}/outcome"): Doc(
        json_schema(OutcomeRequest), _OBJECT, 201, errors=(404, 409, *_BODY_ERRORS)
    ),
    ("POST", "/operations/decisions/{decision_id:str}/execute"): Doc(
        json_schema(ApprovalRequest), _OBJECT, errors=(404, 409, *_BODY_ERRORS)
    ),
    ("POST", "/operations/decisions/{decision_id:str}/reject"): Doc(
        json_schema(ApprovalRequest), _OBJECT, errors=(404, 409, *_BODY_ERRORS)
    ),
    ("GET", "/ready"): Doc(ok=_OBJECT, errors=(503,)),
    ("GET", "/decisions/{decision_id:str}/proof"): Doc(
        ok=json_schema(Proof), errors=(409,), query=json_schema(ProofQuery)
    ),  # 409 not_covered
    ("GET", "/rulesets/{a:str}/diff/{b:str}"): Doc(ok=_TEXT, media_type="text/plain"),
    ("GET", "/metrics"): Doc(ok=_TEXT, media_type="text/plain"),
    ("POST", "/admin/reload"): Doc(ok=_OBJECT, errors=(409, 422)),
    ("POST", "/admin/rollback"): Doc(ok=_OBJECT, errors=(409, 422)),
    ("POST", "/admin/activate/{version:str}"): Doc(ok=_OBJECT, errors=(409, 422)),
    ("GET", "/admin/shadow"): Doc(ok=_OBJECT, errors=(404,)),  # shadow_not_configured
}


def _media(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, OpenAPIMediaType]:
    return {media_type: OpenAPIMediaType(schema=cast(Any, schema))}


def _statuses(handler: HTTPRouteHandler, method: str, path: str, doc: Doc) -> list[int]:
    codes = {400, 503, *doc.errors}
    if takes_json(method, path):
        codes.add(415)
    if not path.startswith(UNLIMITED_PREFIXES):
        codes.add(429)
    if handler.opt.get("roles"):
        codes.update((401, 403))
    if "{" in path:
        codes.add(404)
    return sorted(codes)


def _operation_class(handler: HTTPRouteHandler, method: str, path: str, doc: Doc) -> type[Operation]:
    responses = {str(doc.status): OpenAPIResponse("Success", content=_media(doc.ok or _OBJECT, doc.media_type))}
    for code in _statuses(handler, method, path, doc):
        responses[str(code)] = OpenAPIResponse(REASONS[code], content=_media(_ERROR))
    body = RequestBody(content=_media(doc.body), required=True) if doc.body else None
    query = _query_parameters(doc.query) if doc.query else []

    @dataclass
    class Documented(Operation):
        def __post_init__(self) -> None:
            self.responses = cast(Any, responses)
            if body is not None:
                self.request_body = body
            if query:
                self.parameters = [*(self.parameters or []), *query]

    return Documented


def _query_parameters(schema: dict[str, Any]) -> list[Parameter]:
    required = set(schema.get("required", ()))
    return [
        Parameter(name, ParamType.QUERY, cast(Any, _scalar(field)), required=name in required)
        for name, field in schema["properties"].items()
    ]


def _scalar(field: dict[str, Any]) -> dict[str, Any]:
    """A query value is one string: ``str | None`` fields are documented as their non-null choice."""
    choices = [choice for choice in field.get("anyOf", [field]) if choice.get("type") != "null"]
    return {**choices[0], **{k: v for k, v in field.items() if k not in ("anyOf", "default")}}


_TYPED = re.compile(r"\{([^}:]+)(:[^}]+)?\}")


def document(handlers: Iterable[Any]) -> None:
    """Describe each JSON route (the /ui pages are not in the schema); call once per app."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
            continue
        for path in handler.paths:
            for method in handler.http_methods:
                doc = DOCS.get((method, path), Doc(ok=_OBJECT))
                handler.operation_class = _operation_class(handler, method, _TYPED.sub(r"{\1}", path), doc)

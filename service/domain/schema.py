"""A ruleset's declared fact schema, and the msgspec type that enforces it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec

from service.domain.limits import JsonLimits
from service.errors import BadRequest, InvalidFacts, OpsgateError, Problem, TooDeep

T = TypeVar("T")

FieldType = Literal["int", "number", "str", "bool", "object", "list"]

# Lists in facts are bounded by default so one request cannot hold the engine hostage.
DEFAULT_MAX_ITEMS = 1000


class FieldSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One field of the fact schema, as written in a ruleset file."""

    type: FieldType
    description: str = ""
    required: bool = True
    default: Any = None
    enum: list[Any] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    fields: dict[str, FieldSpec] | None = None
    items: FieldSpec | None = None
    # bounds by a sibling field of the same object (its name): at least / at most its value
    ge_field: str | None = None
    le_field: str | None = None


_SCALARS: dict[str, Any] = {"int": int, "str": str, "bool": bool}


def _constrained(spec: FieldSpec) -> Any:
    bounds = {k: v for k in ("ge", "gt", "le", "lt") if (v := getattr(spec, k)) is not None}
    if spec.enum:
        return Literal[tuple(spec.enum)]
    if spec.type == "number":
        integer = Annotated[int, msgspec.Meta(**_int_bounds(bounds))]
        return Union[integer, Annotated[float, msgspec.Meta(**bounds)]]  # noqa: UP007 - built at run time
    if spec.type == "int":
        return Annotated[int, msgspec.Meta(**_int_bounds(bounds))] if bounds else int  # type: ignore[call-overload]
    if spec.type == "str":
        lengths = {k: v for k in ("min_length", "max_length") if (v := getattr(spec, k)) is not None}
        return Annotated[str, msgspec.Meta(**lengths)] if lengths else str
    return _SCALARS[spec.type]


def _int_bounds(bounds: dict[str, float]) -> dict[str, int]:
    """The same bounds for integers (msgspec wants int bounds on int): gt 0.5 is ge 1."""
    out: dict[str, int] = {}
    for key, value in bounds.items():
        if float(value).is_integer():
            out[key] = int(value)
        elif key in ("ge", "gt"):
            out["ge"] = math.ceil(value)
        else:
            out["le"] = math.floor(value)
    return out


def field_type(name: str, spec: FieldSpec) -> Any:
    """The msgspec type for one field (objects become nested Structs)."""
    if spec.type == "object":
        return struct_type(name, spec.fields or {})
    if spec.type == "list":
        item = field_type(name + "Item", spec.items) if spec.items else Any
        max_items = spec.max_length if spec.max_length is not None else DEFAULT_MAX_ITEMS
        return Annotated[list[item], msgspec.Meta(max_length=max_items)]  # type: ignore[valid-type]
    return _constrained(spec)


def struct_type(name: str, fields: dict[str, FieldSpec]) -> type[msgspec.Struct]:
    definitions: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field_name, spec in fields.items():
        typ = field_type(_camel(name, field_name), spec)
        if spec.required:
            definitions.append((field_name, _described(typ, spec.description)))
        elif spec.type == "list" and spec.default is None:
            definitions.append((field_name, _described(typ, spec.description), msgspec.field(default_factory=list)))
        else:
            optional = Union[typ, None]  # type: ignore[valid-type]  # noqa: UP007 - built at run time
            definitions.append((field_name, _described(optional, spec.description), spec.default))
    required_first = sorted(definitions, key=lambda d: len(d) != 2)
    checks = sibling_bounds(fields)
    namespace = {"__post_init__": _sibling_check(checks)} if checks else None
    return msgspec.defstruct(name, required_first, forbid_unknown_fields=True, kw_only=True, namespace=namespace)


def sibling_bounds(fields: dict[str, FieldSpec]) -> list[tuple[str, str, str]]:
    """``(field, ">=" | "<=", sibling)`` for each bound by a sibling field, in declaration order."""
    return [
        (name, op, other)
        for name, spec in fields.items()
        for op, other in ((">=", spec.ge_field), ("<=", spec.le_field))
        if other is not None
    ]


BoundProblem = tuple[tuple[str, ...], str]


def sibling_bound_problems(fields: dict[str, FieldSpec], key: tuple[str, ...] = ()) -> list[BoundProblem]:
    """``(key of the bound, reason)`` for each ``ge_field``/``le_field`` that does not name a number field
    beside a number field, at every level of objects."""
    found: list[BoundProblem] = []
    for name, spec in fields.items():
        for attr, other in (("ge_field", spec.ge_field), ("le_field", spec.le_field)):
            if other is None:
                continue
            target = fields.get(other) if other != name else None
            if spec.type not in _NUMERIC:
                found.append(((*key, name, attr), f"{attr} bounds a number, and {name!r} is of type {spec.type}"))
            elif target is None or target.type not in _NUMERIC:
                found.append(((*key, name, attr), f"{attr} must name another int or number field beside {name!r}"))
        if spec.fields:
            found.extend(sibling_bound_problems(spec.fields, (*key, name, "fields")))
        if spec.items is not None and spec.items.fields:
            found.extend(sibling_bound_problems(spec.items.fields, (*key, name, "items", "fields")))
    return found


_NUMERIC = ("int", "number")


def _sibling_check(checks: list[tuple[str, str, str]]) -> Callable[[Any], None]:
    def check(struct: Any) -> None:
        # msgspec turns a ValueError here into a ValidationError at the object's path; the field is named
        # in the message (see _SIBLING) so the 422 points at it
        for name, op, other in checks:
            value, bound = getattr(struct, name), getattr(struct, other)
            if value is None or bound is None:
                continue
            if (op == "<=" and not value <= bound) or (op == ">=" and not value >= bound):
                raise ValueError(f"Object field `{name}` must be {op} `{other}` ({bound})")

    return check


def _described(typ: Any, description: str) -> Any:
    """``typ`` with the YAML's description, which the JSON Schema (the OpenAPI document) carries."""
    return Annotated[typ, msgspec.Meta(description=description)] if description else typ


def _camel(*parts: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in parts)


class FactDecoder:
    """Decodes JSON facts (a request body, a file, a batch item) into plain facts, or raises a 400/422
    with the field path."""

    def __init__(self, ruleset_name: str, fields: dict[str, FieldSpec]) -> None:
        self.type = struct_type(_camel(ruleset_name, "Facts"), fields)
        self._decoder = msgspec.json.Decoder(self.type)

    def decode_json(self, body: bytes, limits: JsonLimits | None = None, prefix: str = "") -> dict[str, Any]:
        """``body``'s facts; with ``limits``, a body too deep or too long is refused first (paths under ``prefix``)."""
        if limits is not None:
            limits.check(body, prefix=prefix)
        return msgspec.to_builtins(decoded(self._decoder.decode, body, _invalid))  # type: ignore[no-any-return]

    def convert(self, data: Any) -> dict[str, Any]:
        try:
            facts = msgspec.convert(data, self.type)
        except msgspec.ValidationError as error:
            raise _invalid(error) from None
        return msgspec.to_builtins(facts)  # type: ignore[no-any-return]


MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_SIBLING = re.compile(r"Object field `([^`]+)` (must be .*)")


def _invalid(error: msgspec.ValidationError) -> InvalidFacts:
    problem = facts_problem(str(error))
    return InvalidFacts(f"invalid facts: {problem.path or '$'}: {problem.reason}", [problem])


def decoded(decode: Callable[[bytes], T], body: bytes, invalid: Callable[[msgspec.ValidationError], OpsgateError]) -> T:
    """``decode(body)``, its failures as errors: ``invalid`` ones (422), malformed JSON (400), too deep (422)."""
    try:
        return decode(body)
    except msgspec.ValidationError as error:
        raise invalid(error) from None
    except msgspec.DecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    except RecursionError:  # deeper than the decoder goes: far over any configured limit
        raise TooDeep("JSON too deep", [Problem("nested too deeply to read", path="$")]) from None


def facts_problem(message: str) -> Problem:
    """``Expected `int` >= 0 - at `$.process.attempts``` -> path and reason."""
    reason, sep, where = message.rpartition(" - at ")
    if not sep:
        reason, where = message, ""
    path = where.strip("`").removeprefix("$").removeprefix(".")
    for pattern, text in ((MISSING_FIELD, "required field is missing"), (_UNKNOWN, "unknown field"), (_SIBLING, "")):
        match = pattern.match(reason)
        if match:
            path = f"{path}.{match.group(1)}" if path else match.group(1)
            reason = text or match.group(2)
    return Problem(reason, path=path or "$")

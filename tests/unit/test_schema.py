"""The ops fact schema: what a request body must look like, and how rejections are located."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from service.domain.ruleset import Ruleset
from service.domain.schema import FactDecoder, FieldSpec
from service.errors import BadRequest, InvalidFacts, Problem
from service.http.queries import PendingQuery, decode_query

VALID_BODY = (
    b'{"org_id":0,"process":{"type":"ORDER_PROCESSING","sla":3600,"attempts":1},'
    b'"resource":{"id":"worker-001","capacity":100,"status":"available"},'
    b'"history":{"failures":0,"latency":500}}'
)

FactsFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def decoder(ops: Ruleset) -> FactDecoder:
    return ops.decoder


def rejection(decoder: FactDecoder, facts: Any) -> InvalidFacts:
    with pytest.raises(InvalidFacts) as caught:
        decoder.decode_json(json.dumps(facts).encode())
    return caught.value


def test_the_valid_example_is_accepted_with_an_empty_candidate_list(decoder: FactDecoder) -> None:
    facts = decoder.decode_json(VALID_BODY)
    assert facts == {
        "org_id": 0,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
        "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
        "history": {"failures": 0, "latency": 500},
        "candidates": [],
    }
    assert type(facts["history"]["latency"]) is int


def test_a_fractional_latency_stays_a_float(decoder: FactDecoder, make_facts: FactsFactory) -> None:
    facts = decoder.decode_json(json.dumps(make_facts({"history.latency": 12.5})).encode())
    assert facts["history"]["latency"] == 12.5


def test_candidates_are_decoded_when_given(decoder: FactDecoder, make_facts: FactsFactory) -> None:
    candidate = {"id": "worker-002", "capacity": 7, "status": "available"}
    facts = decoder.decode_json(json.dumps(make_facts({"candidates": [candidate]})).encode())
    assert facts["candidates"] == [candidate]


@pytest.mark.parametrize(
    ("changes", "drop", "path", "reason"),
    [
        pytest.param({"process.attempts": -1}, [], "process.attempts", "Expected `int` >= 0", id="negative-attempts"),
        pytest.param({"org_id": -5}, [], "org_id", "Expected `int` >= 0", id="negative-org"),
        pytest.param({"resource.status": "busy"}, [], "resource.status", "Invalid enum value 'busy'", id="bad-enum"),
        pytest.param({}, ["history.failures"], "history.failures", "required field is missing", id="missing-field"),
        pytest.param({}, ["history"], "history", "required field is missing", id="missing-object"),
        pytest.param({"process.colour": "red"}, [], "process.colour", "unknown field", id="unknown-field"),
        pytest.param({"colour": "red"}, [], "colour", "unknown field", id="unknown-top-level-field"),
        # `gt: 0` on an int is reported by msgspec as the equivalent `>= 1`.
        pytest.param({"process.sla": 0}, [], "process.sla", "Expected `int` >= 1", id="zero-sla"),
        pytest.param({"process.attempts": True}, [], "process.attempts", "Expected `int`, got `bool`", id="bool-int"),
        pytest.param({"process.attempts": 1.5}, [], "process.attempts", "Expected `int`, got `float`", id="float-int"),
        pytest.param({"resource.id": ""}, [], "resource.id", "Expected `str` of length >= 1", id="empty-id"),
        pytest.param({"history.latency": -1}, [], "history.latency", "Expected `int` >= 0", id="negative-latency"),
        pytest.param({"candidates": None}, [], "candidates", "Expected `array`, got `null`", id="null-candidates"),
        pytest.param(
            {"candidates": [{"id": "w-2", "capacity": 1, "status": "gone"}]},
            [],
            "candidates[0].status",
            "Invalid enum value 'gone'",
            id="bad-candidate",
        ),
    ],
)
def test_invalid_facts_are_rejected_with_the_field_path(
    decoder: FactDecoder, make_facts: FactsFactory, changes: dict[str, Any], drop: list[str], path: str, reason: str
) -> None:
    error = rejection(decoder, make_facts(changes, drop=drop))
    assert error.status == 422
    assert error.problems == [Problem(reason, path=path)]
    assert error.message == f"invalid facts: {path}: {reason}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "Expected `object`, got `array`"),
        (b'"facts"', "Expected `object`, got `str`"),
        (b"42", "Expected `object`, got `int`"),
        (b"null", "Expected `object`, got `null`"),
    ],
)
def test_a_body_that_is_not_an_object_is_rejected_at_the_root(decoder: FactDecoder, body: bytes, reason: str) -> None:
    with pytest.raises(InvalidFacts) as caught:
        decoder.decode_json(body)
    assert caught.value.problems == [Problem(reason, path="$")]


@pytest.mark.parametrize("body", [b'{"org_id": 0,', b"", b"{org_id: 0}", b'{"org_id": 0,}', VALID_BODY + b"}"])
def test_malformed_json_is_a_bad_request(decoder: FactDecoder, body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        decoder.decode_json(body)
    assert caught.value.status == 400
    assert caught.value.message.startswith("malformed JSON: ")


def test_converting_python_data_applies_the_same_rules(decoder: FactDecoder, make_facts: FactsFactory) -> None:
    assert decoder.convert(make_facts())["candidates"] == []
    with pytest.raises(InvalidFacts) as caught:
        decoder.convert(make_facts({"process.attempts": -1}))
    assert caught.value.problems == [Problem("Expected `int` >= 0", path="process.attempts")]


def test_decode_query_names_the_parameter() -> None:
    with pytest.raises(BadRequest) as raised:
        decode_query({"limit": "0"}, PendingQuery)
    assert raised.value.message == "invalid query parameter limit: Expected `int` >= 1"
    assert decode_query({"limit": "7"}, PendingQuery).limit == 7


# --- bounds by a sibling field (ge_field, le_field) --------------------------------------------------

COUNTS = {
    "total": FieldSpec(type="int", ge=0),
    "errors": FieldSpec(type="int", ge=0, le_field="total"),
    "share": FieldSpec(type="number", required=False, le_field="limit", ge_field="floor"),
    "limit": FieldSpec(type="number", required=False),
    "floor": FieldSpec(type="number", required=False),
}
SIBLINGS = FactDecoder("counts", {**COUNTS, "inner": FieldSpec(type="object", required=False, fields=COUNTS)})


@pytest.mark.parametrize(
    "facts",
    [
        {"total": 10, "errors": 10},
        {"total": 10, "errors": 0},
        {"total": 0, "errors": 0, "share": 0.5},  # the bounds of share are absent: nothing to check
        {"total": 3, "errors": 2, "share": 0.5, "limit": 0.5, "floor": 0.5},
        {"total": 3, "errors": 2, "inner": {"total": 7, "errors": 7}},
    ],
)
def test_a_value_within_its_sibling_bounds_is_accepted(facts: dict[str, Any]) -> None:
    assert SIBLINGS.decode_json(json.dumps(facts).encode())["errors"] == facts["errors"]


@pytest.mark.parametrize(
    ("facts", "path", "reason"),
    [
        ({"total": 10, "errors": 11}, "errors", "must be <= `total` (10)"),
        ({"total": 0, "errors": 1}, "errors", "must be <= `total` (0)"),
        ({"total": 3, "errors": 2, "share": 0.6, "limit": 0.5}, "share", "must be <= `limit` (0.5)"),
        ({"total": 3, "errors": 2, "share": 0.4, "floor": 0.5}, "share", "must be >= `floor` (0.5)"),
        ({"total": 3, "errors": 2, "inner": {"total": 7, "errors": 8}}, "inner.errors", "must be <= `total` (7)"),
    ],
)
def test_a_value_beyond_its_sibling_bound_is_422_at_its_own_path(facts: dict[str, Any], path: str, reason: str) -> None:
    error = rejection(SIBLINGS, facts)
    assert error.problems == [Problem(reason, path=path)]
    assert error.message == f"invalid facts: {path}: {reason}"
    with pytest.raises(InvalidFacts) as converted:
        SIBLINGS.convert(facts)
    assert converted.value.problems == [Problem(reason, path=path)]

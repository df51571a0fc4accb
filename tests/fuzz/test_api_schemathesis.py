"""Fuzz the API from its own OpenAPI document (schemathesis) against a real ``opsgate serve``:
no answer is a 5xx, every status is documented, and every body matches its documented schema.

Bounded: a fixed number of derandomized examples per operation (the run repeats exactly)."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.exceptions import LitestarDeprecationWarning
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.authoring.catalog import load_catalog
from service.http.apidoc import served
from service.http.app import create_app
from service.settings import Settings
from tests.conftest import EXAMPLE_FACTS, REGO_DIR, RULES_DIR
from tests.e2e.server import Server

EXAMPLES = 25  # per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> dict[str, Any]:
    """The OpenAPI document as the service publishes it for the shipped rules (built in process: no server
    needed to list it)."""
    logging.getLogger("opsgate.http").disabled = True  # the open-mode banner, once per app
    try:
        with warnings.catch_warnings():  # Litestar's notice on `{name:str}` path parameters, here at collection
            warnings.simplefilter("ignore", LitestarDeprecationWarning)
            base: dict[str, Any] = create_app(Settings()).openapi_schema.to_schema()
    finally:
        logging.getLogger("opsgate.http").disabled = False
    return served(base, load_catalog(RULES_DIR, REGO_DIR), Settings().default_ruleset)


DOCUMENT = _document()
OPERATIONS = [
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("fuzz"), RULES_DIR, REGO_DIR, opa_bin)
    yield running
    running.stop()


KEYS = {"decider": "fuzz-decide-key", "admin": "fuzz-admin-key"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    """A server with API keys: a decide-only key and an admin key."""
    entries = [f"{name}:{'admin' if name == 'admin' else 'decide'}:{sha256(token)}" for name, token in KEYS.items()]
    running = Server(
        tmp_path_factory.mktemp("fuzz-keys"), RULES_DIR, REGO_DIR, opa_bin, OPSGATE_API_KEYS=",".join(entries)
    )
    yield running
    running.stop()


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture(scope="module")
def api(server: Server) -> schemathesis.BaseSchema:
    published = server.client.get("/schema/openapi.json")
    assert published.status_code == 200
    assert published.json() == DOCUMENT
    return schemathesis.openapi.from_dict(published.json())


def test_every_json_route_is_documented_and_the_ui_is_not() -> None:
    assert ("POST", "/decide") in OPERATIONS
    assert ("POST", "/decide/{ruleset}/batch") in OPERATIONS
    assert not [path for _, path in OPERATIONS if path.startswith("/ui")]
    decide = DOCUMENT["paths"]["/decide"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OpsFacts"}
    assert sorted(decide["responses"]) == ["200", "400", "401", "403", "404", "413", "415", "422", "429", "503"]
    assert decide["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DecisionResponse"
    }
    # one route of its own (and one batch route) per shipped ruleset, none other
    shipped = {path.stem for path in RULES_DIR.glob("*.yaml")}
    own = {path.split("/")[2] for _, path in OPERATIONS if path.startswith("/decide/") and "{" not in path}
    assert own == shipped | {"batch"}
    assert {path for _, path in OPERATIONS if path.endswith("/batch") and "{" not in path} == {
        "/decide/batch",
        *(f"/decide/{name}/batch" for name in shipped),
    }


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_answers_as_its_openapi_document_says(
    api: schemathesis.BaseSchema, server: Server, method: str, path: str
) -> None:
    operation = api[path][method]

    # valid inputs, and inputs that break the document's schemas (answered 4xx, never 5xx)
    cases = st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, checks=CHECKS)

    fuzz()


@pytest.mark.parametrize("key", [None, "decider", "admin"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_with_keys_the_api_still_answers_as_documented(
    api: schemathesis.BaseSchema, guarded: Server, method: str, path: str, key: str | None
) -> None:
    # no key (401 on every role route), a key without the route's role (403), and the admin key
    operation = api[path][method]
    headers = {"Authorization": f"Bearer {KEYS[key]}"} if key else {}

    @settings(max_examples=3, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=guarded.url, headers=headers, checks=CHECKS)

    fuzz()


VALID = [
    ("/decide", {}, EXAMPLE_FACTS),
    ("/run", {}, EXAMPLE_FACTS),
    ("/decide/{ruleset}", {"ruleset": "ops"}, EXAMPLE_FACTS),
    ("/decide/batch", {}, {"items": [EXAMPLE_FACTS, {"org_id": -1}, EXAMPLE_FACTS]}),
    ("/decide/{ruleset}/batch", {"ruleset": "ops"}, {"items": [EXAMPLE_FACTS]}),
]


@pytest.mark.parametrize(("path", "parameters", "body"), VALID, ids=[path for path, _, _ in VALID])
def test_a_decision_answers_as_its_openapi_document_says(
    api: schemathesis.BaseSchema, server: Server, path: str, parameters: dict[str, str], body: dict[str, Any]
) -> None:
    # a generic object rarely makes valid facts: decide real ones, through the same checks
    operation = api[path]["POST"]

    @settings(max_examples=1, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(path_parameters=parameters, body=body))
    def decide(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=server.url, checks=CHECKS)
        assert response.status_code == 200
        assert response.json()["status"] == "success"

    decide()

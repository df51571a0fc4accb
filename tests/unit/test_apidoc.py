"""The served OpenAPI document (service/http/apidoc.py): a route of its own per loaded ruleset, with its
facts schema, from a document shaped as Litestar's (hand-written here) and a real catalog."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.authoring.catalog import Catalog, load_catalog
from service.http.apidoc import Published, served
from service.http.reference import LocalRedoc
from tests.conftest import REGO_DIR, RULES_DIR


def _operation(path_parameter: bool) -> dict[str, Any]:
    parameters = [{"name": "explain", "in": "query", "schema": {"enum": ["full"]}, "required": False}]
    if path_parameter:
        parameters.insert(0, {"name": "ruleset", "in": "path", "schema": {"type": "string"}, "required": True})
    return {
        "summary": "generic",
        "operationId": "Generic",
        "parameters": parameters,
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True},
        "responses": {"200": {"description": "Success"}},
    }


BASE = {
    "openapi": "3.1.0",
    "paths": {
        "/decide": {"post": _operation(False)},
        "/decide/batch": {"post": _operation(False)},
        "/decide/{ruleset}": {"post": _operation(True)},
        "/decide/{ruleset}/batch": {"post": _operation(True)},
        "/run": {"post": _operation(False)},
        "/health": {"get": {"operationId": "Health"}},
    },
    "components": {"schemas": {}},
}


def _catalog(tmp_path: Path) -> Catalog:
    """ops, and ``alpha``: ops under another name, with a field of its own."""
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    shutil.copy(RULES_DIR / "ops.yaml", rules / "ops.yaml")
    ops = (RULES_DIR / "ops.yaml").read_text()
    alpha = ops.replace("\nname: ops\n", "\nname: alpha\n", 1).replace(
        "\nfacts:\n", "\nfacts:\n  zone: {type: str, required: false, description: Where it runs.}\n", 1
    )
    (rules / "alpha.yaml").write_text(alpha)
    return load_catalog(rules, REGO_DIR)


def _body(document: dict[str, Any], path: str) -> Any:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_each_ruleset_gets_its_two_routes_after_the_generic_ones(tmp_path: Path) -> None:
    document = served(BASE, _catalog(tmp_path), "ops")
    assert list(document["paths"]) == [
        "/decide", "/decide/batch", "/decide/{ruleset}", "/decide/{ruleset}/batch",
        "/decide/alpha", "/decide/alpha/batch", "/decide/ops", "/decide/ops/batch", "/run", "/health",
    ]  # fmt: skip
    alpha = document["paths"]["/decide/alpha"]["post"]
    assert alpha["operationId"] == "decide_alpha"
    assert alpha["summary"] == "Decide with the alpha ruleset"
    assert alpha["description"].startswith("Decides what to do with a process on a resource")
    assert [p["name"] for p in alpha["parameters"]] == ["explain"]  # no {ruleset} in its path
    assert _body(document, "/decide/alpha") == {"$ref": "#/components/schemas/AlphaFacts"}
    batch = document["paths"]["/decide/alpha/batch"]["post"]
    assert batch["operationId"] == "decide_alpha_batch"
    assert _body(document, "/decide/alpha/batch") == {
        "type": "object",
        "properties": {
            "items": {
                "type": "array", "items": {"$ref": "#/components/schemas/AlphaFacts"}, "minItems": 1, "maxItems": 1000,
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }  # fmt: skip


def test_a_ruleset_facts_schema_is_its_yaml(tmp_path: Path) -> None:
    schemas = served(BASE, _catalog(tmp_path), "ops")["components"]["schemas"]
    assert schemas["AlphaFacts"]["required"] == ["org_id", "process", "resource", "history"]
    assert schemas["AlphaFacts"]["properties"]["zone"]["description"] == "Where it runs."
    assert schemas["AlphaFacts"]["properties"]["org_id"] == {
        "type": "integer", "minimum": 0, "description": "The organisation the process belongs to.",
    }  # fmt: skip
    assert "zone" not in schemas["OpsFacts"]["properties"]
    assert schemas["AlphaFactsProcess"]["properties"]["sla"] == {
        "type": "integer", "exclusiveMinimum": 0, "description": "Service level in seconds.",
    }  # fmt: skip
    # the answers are named too
    assert {"DecisionResponse", "ErrorResponse", "BatchResponse"} <= schemas.keys()
    assert schemas["BatchResponse"]["properties"]["results"]["items"] == {
        "anyOf": [{"$ref": "#/components/schemas/DecisionResponse"}, {"$ref": "#/components/schemas/ErrorResponse"}]
    }


@pytest.mark.parametrize("default", ["ops", "alpha"])
def test_the_default_routes_take_the_default_rulesets_facts_and_run_those_of_ops(tmp_path: Path, default: str) -> None:
    before = copy.deepcopy(BASE)
    document = served(BASE, _catalog(tmp_path), default)
    expected = {"$ref": f"#/components/schemas/{default.capitalize()}Facts"}
    assert _body(document, "/decide") == expected
    assert _body(document, "/decide/batch")["properties"]["items"]["items"] == expected
    assert _body(document, "/run") == {"$ref": "#/components/schemas/OpsFacts"}
    assert _body(document, "/decide/{ruleset}") == {"type": "object"}  # any ruleset's
    assert before == BASE  # Litestar's document is left as it is


def test_the_document_is_rebuilt_only_when_the_served_version_changes(tmp_path: Path) -> None:
    published = Published("ops")
    first = _catalog(tmp_path)
    document = published.document(BASE, first)
    assert published.document(BASE, load_catalog(tmp_path / "rules", REGO_DIR)) is document  # same files
    (tmp_path / "rules" / "alpha.yaml").unlink()
    changed = published.document(BASE, load_catalog(tmp_path / "rules", REGO_DIR))
    assert "/decide/alpha" not in changed["paths"]
    assert "/decide/alpha" in document["paths"]


class _App:
    def __init__(self, catalog: Catalog) -> None:
        self.state = type("State", (), {"runtime": type("Runtime", (), {"catalog": catalog})()})()

    def route_reverse(self, name: str) -> str:
        return {"opsgate_redoc_bundle": "/schema/redoc.standalone.js"}.get(name, "/schema/openapi.json")


class _Request:
    def __init__(self, catalog: Catalog) -> None:
        self.app = _App(catalog)
        self.route_handler = type("Handler", (), {"resolve_type_encoders": staticmethod(lambda: None)})()


def test_the_reference_page_runs_the_local_bundle_with_the_document_inline(tmp_path: Path) -> None:
    bundle = tmp_path / "redoc.standalone.js"
    bundle.write_text("/* redoc */")
    page = LocalRedoc(Published("ops"), bundle).render(_Request(_catalog(tmp_path)), {**BASE, "info": {"title": "t"}})
    html = page.decode()
    assert "<script src='/schema/redoc.standalone.js'></script>" in html
    assert '"/decide/alpha"' in html  # the served document, not Litestar's
    assert "://" not in html  # nothing from another host
    assert "default-src 'none'; script-src 'self' 'sha256-" in html


def test_without_the_bundle_the_reference_page_says_how_to_get_it(tmp_path: Path) -> None:
    page = LocalRedoc(Published("ops"), tmp_path / "absent.js").render(_Request(_catalog(tmp_path)), BASE)
    assert b"run <code>make redoc</code>" in page
    assert b"<a href='/schema/openapi.json'>/schema/openapi.json</a>" in page

"""The OpenAPI document as served: Litestar's (http/openapi.py) with the named schemas, and each loaded
ruleset's own routes, ``POST /decide/<name>`` and ``/decide/<name>/batch``, whose request body is that
ruleset's fact schema (the msgspec type its YAML declares), so a generated client has a typed call per
ruleset.  ``/decide`` and ``/decide/batch`` take the default ruleset's facts, ``/run`` those of ops.

Built from the catalog being served: a reload, rollback or activate that changes a fact schema or the
set of rulesets changes the document on its next request (it is rebuilt when the version changes).
"""

from __future__ import annotations

import copy
from typing import Any

from service.authoring.catalog import Catalog
from service.http.decide import RUN_RULESET
from service.http.openapi import batch_body, components

GENERIC, GENERIC_BATCH = "/decide/{ruleset}", "/decide/{ruleset}/batch"


def served(base: dict[str, Any], catalog: Catalog, default_ruleset: str) -> dict[str, Any]:
    """``base`` (Litestar's document) for ``catalog``: a new document; ``base`` is left as it is."""
    document = copy.deepcopy(base)
    names = sorted(catalog.rulesets)
    refs, schemas = components(*(catalog.rulesets[name].decoder.type for name in names))
    document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
    facts = dict(zip(names, refs, strict=True))
    paths: dict[str, Any] = document["paths"]
    for path, ruleset, batch in (("/decide", default_ruleset, False), ("/decide/batch", default_ruleset, True),
                                 ("/run", RUN_RULESET, False)):  # fmt: skip
        if path in paths and ruleset in facts:
            _set_body(paths[path]["post"], facts[ruleset], batch)
    document["paths"] = _with_ruleset_routes(paths, catalog, facts)
    return document


def _with_ruleset_routes(paths: dict[str, Any], catalog: Catalog, facts: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with each ruleset's two routes after the generic ones (in that order on the page)."""
    out: dict[str, Any] = {}
    for path, item in paths.items():
        out[path] = item
        if path != GENERIC_BATCH or GENERIC not in paths:
            continue
        for name, schema in facts.items():
            description = catalog.rulesets[name].description
            out[f"/decide/{name}"] = {"post": _route(paths[GENERIC]["post"], name, schema, description, False)}
            out[f"/decide/{name}/batch"] = {"post": _route(item["post"], name, schema, description, True)}
    return out


def _route(generic: dict[str, Any], name: str, facts: dict[str, Any], description: str, batch: bool) -> dict[str, Any]:
    operation = copy.deepcopy(generic)
    operation["operationId"] = f"decide_{name}_batch" if batch else f"decide_{name}"
    operation["summary"] = (
        f"Decide up to 1,000 items of the {name} ruleset" if batch else f"Decide with the {name} ruleset"
    )
    if description:
        operation["description"] = description
    operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("in") != "path"]
    if not operation["parameters"]:
        del operation["parameters"]
    _set_body(operation, facts, batch)
    return operation


def _set_body(operation: dict[str, Any], facts: dict[str, Any], batch: bool) -> None:
    schema = batch_body(facts) if batch else facts
    operation["requestBody"]["content"]["application/json"]["schema"] = schema


class Published:
    """The served document, rebuilt only when Litestar's or the served catalog's version changes."""

    def __init__(self, default_ruleset: str) -> None:
        self.default_ruleset = default_ruleset
        self._made_from: tuple[dict[str, Any], str] | None = None
        self._document: dict[str, Any] = {}

    def document(self, base: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
        made_from = self._made_from
        if made_from is None or made_from[0] is not base or made_from[1] != catalog.version:
            self._document = served(base, catalog, self.default_ruleset)
            self._made_from = (base, catalog.version)
        return self._document

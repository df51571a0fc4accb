"""Fixtures for the unit tests: the shipped ops ruleset and facts built from its example."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from service.authoring.rulesets import load_ruleset
from service.domain.ruleset import Ruleset
from tests.conftest import EXAMPLE_FACTS as VALID_FACTS
from tests.conftest import RULES_DIR

OPS_FILE = RULES_DIR / "ops.yaml"
OPS_DISPLAY = "rules/ops.yaml"


@pytest.fixture(scope="session")
def ops() -> Ruleset:
    """The shipped ruleset, loaded the way the service loads it."""
    return load_ruleset(OPS_FILE, OPS_DISPLAY, [])


@pytest.fixture(scope="session")
def ops_text() -> str:
    return OPS_FILE.read_text(encoding="utf-8")


@pytest.fixture
def make_facts() -> Callable[..., dict[str, Any]]:
    """``make_facts({"process.attempts": 2}, drop=["history.failures"])``: the valid example, edited."""

    def build(changes: Mapping[str, Any] | None = None, drop: Iterable[str] = ()) -> dict[str, Any]:
        facts = copy.deepcopy(VALID_FACTS)
        for dotted, value in (changes or {}).items():
            *parents, name = dotted.split(".")
            _walk(facts, parents)[name] = value
        for dotted in drop:
            *parents, name = dotted.split(".")
            del _walk(facts, parents)[name]
        return facts

    return build


def _walk(facts: dict[str, Any], parents: list[str]) -> dict[str, Any]:
    node = facts
    for name in parents:
        node = node[name]
    return node

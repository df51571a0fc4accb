"""Every finite number decides as the expression language does, through the real durable_rules engine.

durable_rules' C parser refuses ``1e-06`` (an exponent without a fraction), reads integers as 64 bits,
compares an integer with a double as a double and divides integers as integers: the adapter keeps each
of those from changing which rules fire.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.adapters.rules_engine.engine import LoadedRuleset, _MsgspecJson, shared_engine
from service.authoring.rulesets import load_ruleset, parse_ruleset
from service.domain import decision as dec
from service.domain import expr
from service.domain.ruleset import Ruleset
from tests.conftest import RULES_DIR

# The request of the report, byte for byte: error_rate is written 0.000001 and read as 1e-06.
CANARY_REQUEST = (
    b'{"org_id":3,"deployment":"d","stage":25,"stage_minutes":40,"metrics":{"error_rate":0.000001,'
    b'"quality_score":0.82,"latency_p95_ms":1200,"consistency":0.95}}'
)
# Each of these once made durable_rules refuse the fact (error 204) or compare it wrongly.
AWKWARD = [1e-6, 1e-7, 1e16, 1e21, 1e308, 1e-300, 5e-324, 2**53 + 1, 2**63, 2**64, -(2**63) - 1]


def direct(ruleset: Ruleset, facts: dict[str, Any]) -> list[str]:
    """The rules whose conditions hold, by the expression language alone."""
    scope = {**facts, "params": ruleset.params}
    return sorted(rule.id for rule in ruleset.rules if expr.evaluate(rule.when, scope))


def decision_type(ruleset: Ruleset, facts: dict[str, Any], fired_ids: list[str]) -> str | None:
    _, winners = dec.fired_rules(ruleset, fired_ids)
    proposal = dec.propose(ruleset, facts, winners)
    return None if proposal is None else proposal.decision_type


@pytest.fixture(scope="module")
def canary() -> tuple[Ruleset, LoadedRuleset]:
    ruleset = load_ruleset(RULES_DIR / "canary.yaml", "rules/canary.yaml", [])
    return ruleset, shared_engine().load(ruleset)


def test_the_reported_canary_request_is_promoted(canary: tuple[Ruleset, LoadedRuleset]) -> None:
    ruleset, loaded = canary
    facts = ruleset.decoder.decode_json(CANARY_REQUEST)
    assert facts["metrics"]["error_rate"] == 1e-6
    fired = shared_engine().match(loaded, facts)
    assert sorted(fired) == direct(ruleset, facts) == ["promote"]
    assert decision_type(ruleset, facts, fired) == "CANARY.PROMOTE"
    assert shared_engine().session_facts(loaded) == []  # asserted and retracted


@pytest.mark.parametrize("value", [v for v in AWKWARD if isinstance(v, float) and v <= 1])
def test_a_tiny_error_rate_is_promoted(canary: tuple[Ruleset, LoadedRuleset], value: float) -> None:
    ruleset, loaded = canary
    facts = ruleset.decoder.decode_json(CANARY_REQUEST.replace(b"0.000001", json.dumps(value).encode()))
    fired = shared_engine().match(loaded, facts)
    assert sorted(fired) == direct(ruleset, facts) == ["promote"]


@pytest.mark.parametrize("value", [v for v in AWKWARD if v >= 0])  # both fields are >= 0
@pytest.mark.parametrize("field", ["stage_minutes", "latency_p95_ms"])
def test_each_awkward_number_decides_as_the_conditions_say(
    canary: tuple[Ruleset, LoadedRuleset], field: str, value: float
) -> None:
    ruleset, loaded = canary
    body = json.loads(CANARY_REQUEST)
    (body["metrics"] if field == "latency_p95_ms" else body)[field] = value
    facts = ruleset.decoder.decode_json(json.dumps(body).encode())
    fired = shared_engine().match(loaded, facts)
    assert sorted(fired) == direct(ruleset, facts)
    if field == "latency_p95_ms":
        expected = "CANARY.ROLLBACK" if value > 2000 else "CANARY.PROMOTE"
    else:
        expected = "CANARY.HOLD" if value < 15 else "CANARY.PROMOTE"
    assert decision_type(ruleset, facts, fired) == expected


HEADER = """\
name: numbers
agent: a
description: d
owner: o
escalation: {decision: T.E, action: {type: OPEN_INCIDENT}}
facts:
  x: {type: number}
  y: {type: number}
rules:
"""
CONSTANTS = [
    "0", "-0.0", "1", "-1", "0.5", "0.1", "1e-6", "1e-7", "5e-324", "-1e-300", "1e16", "1e21", "1e308",
    "-1e308", "9007199254740992", "9007199254740993", "-9007199254740993", "9007199254740992.0",
]  # fmt: skip
OPERATORS = ["<", "<=", "==", ">", ">=", "!="]
BETWEEN_FIELDS = ["x < y", "x == y", "x >= y", "x != y", "x >= y / 2", "x < y + 1", "x < y * 4", "x - y > 0.5"]
CONDITIONS = [f"x {op} {c}" for c in CONSTANTS for op in OPERATORS] + BETWEEN_FIELDS


@pytest.fixture(scope="module")
def numbers() -> tuple[Ruleset, LoadedRuleset, LoadedRuleset]:
    rules = "".join(
        f"  - {{id: r{i}, title: R, when: {json.dumps(c)}, then: {{decision: T.A, confidence: 1, autonomy: L1}}}}\n"
        for i, c in enumerate(CONDITIONS)
    )
    ruleset = parse_ruleset((HEADER + rules).encode(), "rules/numbers.yaml", [])
    engine = shared_engine()
    filtered = engine.load(ruleset, prefilter=True)
    assert filtered.prefilter is not None  # more rules than one chunk holds
    return ruleset, engine.load(ruleset, prefilter=False), filtered


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # subnormals and large exponents included
    st.integers(-(2**70), 2**70),
    st.integers(-10, 10),
    st.integers(2**53 - 2, 2**53 + 2).map(lambda i: i * (1 if i % 2 else -1)),
    st.sampled_from([*AWKWARD, 0.0, -0.0, 0.5, 9007199254740992.0, 9007199254740994.0, 2**63 - 1, -(2**63)]),
)


@settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(x=NUMBERS, y=NUMBERS)
def test_the_engine_fires_what_direct_evaluation_fires(
    numbers: tuple[Ruleset, LoadedRuleset, LoadedRuleset], x: int | float, y: int | float
) -> None:
    ruleset, plain, filtered = numbers
    facts = {"x": x, "y": y}
    expected = direct(ruleset, facts)
    assert sorted(shared_engine().match(plain, facts)) == expected
    assert sorted(shared_engine().match(filtered, facts)) == expected


def test_a_rule_constant_written_with_an_exponent_loads_and_compares(
    numbers: tuple[Ruleset, LoadedRuleset, LoadedRuleset],
) -> None:
    ruleset, plain, _ = numbers
    facts = {"x": 2e-6, "y": 0}
    fired = {CONDITIONS[int(rule_id[1:])] for rule_id in shared_engine().match(plain, facts)}
    assert {"x > 1e-6", "x != 1e-7", "x < 1e16", "x > 5e-324"} <= fired
    assert "x < 1e-6" not in fired
    assert sorted(shared_engine().match(plain, facts)) == direct(ruleset, facts)


def test_only_numbers_get_a_fraction_and_every_value_reads_back() -> None:
    value = {
        "e": [1e-6, -1e-7, 1e16, 5e-324, -1e308, 1.5e300, 1e-5, 0.0, -0.0, 12, 2**64],
        "strings": ["x:1e5", "[2e3", ',3e4"\\', "e2e", 'q"1e9'],
        "1e5": 1e21,
    }
    text = _MsgspecJson.dumps(value)
    assert text == (
        '{"e":[1.0e-6,-1.0e-7,1.0e16,5.0e-324,-1.0e308,1.5e300,0.00001,0.0,-0.0,12,18446744073709551616],'
        '"strings":["x:1e5","[2e3",",3e4\\"\\\\","e2e","q\\"1e9"],"1e5":1.0e21}'
    )
    assert msgspec.json.decode(text) == value
    assert _MsgspecJson.dumps(1e-7) == "1.0e-7"

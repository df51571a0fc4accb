"""Property: with the chunk pre-filter, durable_rules fires exactly the rules it fires without it, in the
same order, for generated rulesets and facts (including facts of the wrong type, null, missing or dotted)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.adapters.rules_engine import engine as engine_module
from service.adapters.rules_engine.engine import LoadedRuleset, shared_engine
from service.authoring.rulesets import parse_ruleset
from service.errors import EngineError

HEADER = """\
name: prop
agent: a
description: d
owner: o
escalation: {decision: T.E, action: {type: OPEN_INCIDENT}}
facts:
  k: {type: str}
  n: {type: int}
  x: {type: number}
  b: {type: bool}
  o: {type: object, fields: {t: {type: str}, m: {type: int}}}
  opt: {type: str, required: false}
rules:
"""

STRINGS = ["A", "B", "5", "true", "1.000000", ""]
COMPARISONS = st.one_of(
    st.builds(lambda s: f"k == {json.dumps(s)}", st.sampled_from(STRINGS)),
    st.builds(lambda s: f"o.t == {json.dumps(s)}", st.sampled_from(STRINGS)),
    st.builds(lambda v: f"k in {json.dumps(v)}", st.lists(st.sampled_from(STRINGS), min_size=1, max_size=3)),
    st.builds(lambda i: f"n == {i}", st.sampled_from([0, 1, 2, 5])),
    st.builds(lambda i: f"o.m == {i}", st.sampled_from([0, 1, 2])),
    st.builds(lambda v: f"x == {v}", st.sampled_from(["1", "1.0", "2.5", "0"])),
    st.builds(lambda v: f"n in {v}", st.sampled_from(["[1, 2]", "[0, 5]"])),
    st.sampled_from(
        [
            "b",
            "b == false",
            "not b",
            "n > 1",
            "n != 1",
            'k != "A"',
            'not (k == "A")',
            'opt == "A"',
            "len(k) == 1",
            "n == o.m",
            "true",
        ]
    ),
)
CONDITIONS = st.recursive(
    COMPARISONS,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=4,
)
NON_STRINGS: list[Any] = [0, 1, 2, 5, 1.0, 2.5, 0.5, True, False, None, [], {}]
VALUES = st.sampled_from([*NON_STRINGS, "A", "B", "5", "true", "1.000000", ""])
# durable_rules compares a string fact with a number constant using an unset length, so its answer
# varies from run to run: fields tested against numbers never hold strings here.
NUMERIC_VALUES = st.sampled_from(NON_STRINGS)
NUMERIC = {"n", "x", "b", "m"}


def value(draw: st.DrawFn, key: str) -> Any:
    return draw(NUMERIC_VALUES if key in NUMERIC else VALUES)


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for key in ("k", "n", "x", "b", "opt"):
        if draw(st.booleans()) or key != "opt" and draw(st.integers(0, 9)):
            chosen[key] = value(draw, key)
    shape = draw(st.sampled_from(["object", "missing", "scalar", "dotted"]))
    if shape == "object":
        chosen["o"] = {key: value(draw, key) for key in ("t", "m") if draw(st.integers(0, 5))}
    elif shape == "scalar":
        chosen["o"] = draw(VALUES)
    elif shape == "dotted":
        chosen["o"] = {"t": value(draw, "t")}
        chosen["o.t"] = value(draw, "t")
    return chosen


def ruleset_text(conditions: list[str]) -> bytes:
    rules = "".join(
        f"  - {{id: r{i}, title: R, when: {json.dumps(c)}, then: {{decision: T.A, confidence: 1, autonomy: L1}}}}\n"
        for i, c in enumerate(conditions)
    )
    return (HEADER + rules).encode()


def load_both(conditions: list[str], chunk_size: int) -> tuple[LoadedRuleset, LoadedRuleset]:
    """The rules of ``conditions`` loaded without and with the pre-filter, ``chunk_size`` rules a chunk."""
    ruleset = parse_ruleset(ruleset_text(conditions), "rules/prop.yaml", [])
    engine = shared_engine()
    size = engine_module.CHUNK_SIZE
    engine_module.CHUNK_SIZE = chunk_size
    try:
        return engine.load(ruleset, prefilter=False), engine.load(ruleset, prefilter=True)
    finally:
        engine_module.CHUNK_SIZE = size


def outcome(loaded: Any, fact: dict[str, Any]) -> list[str] | str:
    try:
        return shared_engine().match(loaded, fact)
    except EngineError:
        return "error"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions=st.lists(CONDITIONS, min_size=3, max_size=12), cases=st.lists(facts(), min_size=1, max_size=8))
def test_the_prefilter_never_changes_what_fires(conditions: list[str], cases: list[dict[str, Any]]) -> None:
    plain, filtered = load_both(conditions, 2)  # many chunks from few rules
    assert filtered.prefilter is not None
    for fact in cases:
        assert outcome(filtered, fact) == outcome(plain, fact), (conditions, fact)


def test_the_generated_cases_do_skip_chunks() -> None:
    _, loaded = load_both(['k == "A"', 'k == "B" and n == 1', "n > 1"], 1)
    engine = shared_engine()
    assert loaded.prefilter is not None
    fact = {"sid": "0", "id": "1", "n": 1, "f": {"k": "B", "n": 2}, "d": {}}
    assert loaded.prefilter.chunks(fact) == [2]
    assert engine.match(loaded, {"k": "B", "n": 2}) == ["r2"]
    assert engine.match(loaded, {"k": "B", "n": 1}) == ["r1"]


def test_a_dotted_key_that_durable_rules_reads_as_the_path_keeps_its_chunk() -> None:
    plain, filtered = load_both(['o.t == "A"', 'o.t == "B"', "n > 1"], 1)
    engine = shared_engine()
    first_key_wins = {"o.t": "A", "o": {"t": "Z"}, "n": 0}
    fired = engine.match(plain, first_key_wins)
    assert set(fired) == {"r0"}  # durable_rules reads "A" (once per name it matches)
    assert engine.match(filtered, first_key_wins) == fired
    assert engine.match(filtered, {"o.t": "B", "n": 0}) == engine.match(plain, {"o.t": "B", "n": 0}) == ["r1"]


def test_what_durable_rules_counts_as_equal_across_types_keeps_its_chunk() -> None:
    plain, filtered = load_both(['k == "5"', 'k == "true"', "n == 1", "x == 2", 'k == "A"'], 1)
    engine = shared_engine()
    cases = [
        ({"k": 5, "n": 0, "x": 0}, ["r0"]),  # durable_rules: 5 == "5"
        ({"k": True, "n": 0, "x": 0}, ["r1"]),  # true == "true"
        ({"k": "B", "n": True, "x": 0}, ["r2"]),  # true == 1
        ({"k": "B", "n": 0, "x": 2.0}, ["r3"]),
        ({"k": "B", "n": 0, "x": 0}, []),
    ]
    for fact, expected in cases:
        assert engine.match(plain, fact) == expected, fact
        assert engine.match(filtered, fact) == expected, fact

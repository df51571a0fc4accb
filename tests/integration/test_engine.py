"""The real durable_rules engine, with each trap from DESIGN.md pinned by a test."""

from __future__ import annotations

import resource
import threading
from pathlib import Path

import msgspec
import pytest

from service.adapters.rules_engine.engine import CHUNK_SIZE, RuleEngine, shared_engine
from service.authoring.rulesets import load_ruleset
from service.domain import expr
from service.domain.ruleset import Ruleset
from service.errors import EngineError
from tests.conftest import EXAMPLE_FACTS, RULES_DIR


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return shared_engine()


@pytest.fixture(scope="module")
def ops() -> Ruleset:
    return load_ruleset(RULES_DIR / "ops.yaml", "rules/ops.yaml", [])


def facts(attempts: int = 1, failures: int = 0, status: str = "available", capacity: int = 100) -> dict:
    return {
        **EXAMPLE_FACTS,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": attempts},
        "resource": {"id": "worker-001", "capacity": capacity, "status": status},
        "history": {"failures": failures, "latency": 500},
        "candidates": [],
    }


def write_ruleset(tmp_path: Path, name: str, rules_yaml: str, hit_policy: str = "first") -> Ruleset:
    text = f"""
name: {name}
agent: test-agent
description: test
owner: tests
hit_policy: {hit_policy}
facts:
  x: {{type: int}}
escalation: {{decision: T.ESCALATE, action: {{type: OPEN_INCIDENT}}}}
rules:
{rules_yaml}
"""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_ruleset(path, f"rules/{name}.yaml", [])


def test_every_matching_rule_fires_not_only_the_first(engine: RuleEngine, ops: Ruleset) -> None:
    loaded = engine.load(ops)
    fired = engine.match(loaded, facts(attempts=3, failures=3, status="offline"))
    assert sorted(fired) == sorted(
        ["escalate-attempts", "escalate-failures", "reassign-unavailable", "retry-after-failure", "dispatch"]
    )


def test_a_first_decision_that_matches_no_rule_returns_empty_and_does_not_crash(
    engine: RuleEngine, tmp_path: Path
) -> None:
    ruleset = write_ruleset(
        tmp_path,
        "nomatch",
        "  - {id: big, title: Big, when: x > 100, then: {decision: T.A, confidence: 1, autonomy: L1}}",
    )
    loaded = engine.load(ruleset)
    assert engine.match(loaded, {"x": 1}) == []
    assert engine.match(loaded, {"x": 101}) == ["big"]
    assert engine.match(loaded, {"x": 2}) == []


def test_nothing_carries_over_between_decisions(engine: RuleEngine, ops: Ruleset) -> None:
    loaded = engine.load(ops)
    assert sorted(engine.match(loaded, facts(failures=1))) == ["dispatch", "retry-after-failure"]
    assert engine.match(loaded, facts(failures=0)) == ["dispatch"]
    assert engine.session_facts(loaded) == []


def test_more_than_64_matching_rules_are_split_across_engine_rulesets(engine: RuleEngine, tmp_path: Path) -> None:
    count = CHUNK_SIZE * 2 + 10  # 130 rules, all matching x >= 0
    rules = "\n".join(
        f"  - {{id: r{i}, title: R{i}, priority: {i}, when: x >= {i % 3 - 2}, "
        "then: {decision: T.A, confidence: 1, autonomy: L1}}"
        for i in range(count)
    )
    loaded = engine.load(write_ruleset(tmp_path, "wide", rules))
    assert len(loaded.chunks) == 3
    assert sorted(engine.match(loaded, {"x": 0})) == sorted(f"r{i}" for i in range(count))


def test_derived_conditions_match_what_durable_rules_cannot_express(engine: RuleEngine, tmp_path: Path) -> None:
    rules = "  - {id: pow, title: Pow, when: 2 ** x > 1000, then: {decision: T.A, confidence: 1, autonomy: L1}}"
    loaded = engine.load(write_ruleset(tmp_path, "derived", rules))
    assert loaded.derived != ()
    assert engine.match(loaded, {"x": 10}) == ["pow"]
    assert engine.match(loaded, {"x": 9}) == []


def test_the_engine_compiles_each_rule_with_derived_keys_of_its_own(engine: RuleEngine, tmp_path: Path) -> None:
    rules = "\n".join(
        f"  - {{id: {name}, title: T, when: 2 ** x > {bound}, then: {{decision: T.A, confidence: 1, autonomy: L1}}}}"
        for name, bound in (("small", 10), ("large", 1000))
    )
    loaded = engine.load(write_ruleset(tmp_path, "two_derived", rules))
    assert [key for key, _ in loaded.derived] == ["r0_0", "r1_0"]
    assert engine.match(loaded, {"x": 5}) == ["small"]
    assert sorted(engine.match(loaded, {"x": 10})) == ["large", "small"]


def test_a_condition_whose_constant_cannot_be_computed_is_refused_at_load(engine: RuleEngine, ops: Ruleset) -> None:
    broken = msgspec.structs.replace(ops.rules[0], when=expr.parse("process.attempts > 1 / 0"))
    ruleset = msgspec.structs.replace(ops, rules=(broken, *ops.rules[1:]))
    with pytest.raises(EngineError, match="division by zero"):
        engine.load(ruleset)


def test_calls_from_many_threads_are_serialised_onto_the_engine_thread(engine: RuleEngine, ops: Ruleset) -> None:
    loaded = engine.load(ops)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker(failures: int) -> None:
        try:
            for _ in range(300):
                results.append(sorted(engine.match(loaded, facts(failures=failures))))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i % 2,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results.count(["dispatch"]) == 600
    assert results.count(["dispatch", "retry-after-failure"]) == 600


@pytest.mark.slow
def test_one_hundred_thousand_decisions_in_a_row_all_have_results_and_memory_stays_flat(
    engine: RuleEngine, ops: Ruleset
) -> None:
    loaded = engine.load(ops)
    cases = [
        (facts(attempts=3), "escalate-attempts"),
        (facts(failures=1), "retry-after-failure"),
        (facts(status="offline"), "reassign-unavailable"),
        (facts(), "dispatch"),
    ]
    missing = 0
    rss_after_warmup = 0
    for i in range(100_000):
        case, expected = cases[i % 4]
        if expected not in engine.match(loaded, case):
            missing += 1
        if i == 10_000:
            rss_after_warmup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_after_warmup
    assert missing == 0
    assert growth_kib < 20_000, f"resident memory grew by {growth_kib} KiB over 90k decisions"
    assert engine.session_facts(loaded) == []


class _FailingList(list[str]):
    def append(self, item: str) -> None:
        raise RuntimeError(f"boom in {item}")


def test_an_exception_inside_a_rule_action_is_raised_not_swallowed(
    engine: RuleEngine, ops: Ruleset, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = engine.load(ops)
    monkeypatch.setattr(engine, "_fired", _FailingList())
    with pytest.raises(EngineError, match="rule action failed: .*boom in"):
        engine.match(loaded, facts())
    monkeypatch.undo()
    assert engine.match(loaded, facts()) == ["dispatch"]
    assert engine.session_facts(loaded) == []

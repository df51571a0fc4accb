"""Rule test cases: the file format's errors and the comparison of expectations (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import msgspec
import pytest

from service.authoring.cases import Expect, compare, load_cases, parse_cases
from service.domain.ruleset import Ruleset
from service.errors import RulesetInvalid

ACTUAL = {
    "decision_type": "OPS.RETRY",
    "confidence": 0.7000000000000001,
    "fired": ["retry-after-failure", "dispatch"],
    "won": "retry-after-failure",
    "violations": [],
    "execution_status": "APPROVED",
    "actions": [{"type": "RETRY", "autonomy": "L1", "resource_id": "w-1", "backoff_seconds": 60}],
}


def expect(**given: object) -> Expect:
    return msgspec.convert(given, Expect)


def test_matching_expectations_give_no_mismatch() -> None:
    given = expect(
        decision_type="OPS.RETRY",
        confidence=0.7,  # within 1e-9 of 0.7000000000000001
        fired=["dispatch", "retry-after-failure"],  # a set: order ignored
        won=["retry-after-failure"],  # a one-element list says the same as the id
        violations=[],
        execution_status="APPROVED",
        actions=[{"type": "RETRY", "backoff_seconds": 60}],  # a subset of the action
    )
    assert compare(given, ACTUAL) == []


def test_each_unmet_expectation_is_named_with_both_values() -> None:
    given = expect(confidence=0.75, fired=["dispatch"], violations=["OPS-MIN-CONFIDENCE"], won="dispatch")
    assert [(m.key, m.expected, m.actual) for m in compare(given, ACTUAL)] == [
        ("confidence", 0.75, 0.7000000000000001),
        ("fired", ["dispatch"], ["retry-after-failure", "dispatch"]),
        ("won", "dispatch", "retry-after-failure"),
        ("violations", ["OPS-MIN-CONFIDENCE"], []),
    ]


def test_actions_need_the_same_length_and_each_field_given() -> None:
    assert [m.key for m in compare(expect(actions=[{"backoff_seconds": 120}]), ACTUAL)] == ["actions"]
    assert [m.key for m in compare(expect(actions=[]), ACTUAL)] == ["actions"]
    assert [m.key for m in compare(expect(actions=[{"target_id": None}]), ACTUAL)] == ["actions"]


def test_no_winner_is_expected_as_null() -> None:
    assert compare(expect(won=None), {**ACTUAL, "won": None}) == []
    assert [m.key for m in compare(expect(won=None), ACTUAL)] == ["won"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- name: a\n  facts: {}\n  expect: {}\n  note: x\n", "c.yaml:4:3: error: [0].note: unknown key 'note'"),
        ("- name: a\n  expect: {}\n", "c.yaml:1:3: error: [0]: Object missing required field `facts`"),
        ("- name: a\n  facts: {}\n  expect: {confidence: high}\n", "c.yaml:3:24: error: [0].expect.confidence:"),
        ("- name: a\n  facts: []\n  expect: {}\n", "c.yaml:2:10: error: [0].facts: Expected `object`"),
        (
            "- name: a\n  facts: {}\n  expect: {execution_status: DONE}\n",
            "c.yaml:3:30: error: [0].expect.execution_status: Invalid enum value 'DONE'",
        ),
        ("name: a\n", "c.yaml:1:1: error: a case file is a non-empty YAML list"),
    ],
)
def test_a_malformed_case_is_reported_at_file_line_column(text: str, where: str) -> None:
    with pytest.raises(RulesetInvalid) as raised:
        parse_cases(text.encode(), "c.yaml", "ops")
    assert str(raised.value.problems[0]).startswith(where)


def test_a_case_remembers_where_it_starts() -> None:
    cases = parse_cases(b"# header\n- name: one\n  facts: {}\n  expect: {}\n\n- name: two\n  facts: {}\n  expect: {}\n",
                        "c.yaml", "ops")  # fmt: skip
    assert [(c.name, c.file, c.line) for c in cases] == [("one", "c.yaml", 2), ("two", "c.yaml", 6)]


def test_a_case_name_used_twice_in_a_ruleset_is_reported_where_it_repeats(tmp_path: Path) -> None:
    cases = tmp_path / "rules" / "tests" / "ops"
    cases.mkdir(parents=True)
    (cases / "a.yaml").write_text("- name: same\n  facts: {}\n  expect: {}\n")
    (cases / "b.yaml").write_text("# again\n- name: same\n  facts: {}\n  expect: {}\n")
    with pytest.raises(RulesetInvalid) as raised:
        load_cases(tmp_path / "rules", {"ops": cast(Ruleset, None)}, ["ops"])
    assert [str(p) for p in raised.value.problems] == [
        "rules/tests/ops/b.yaml:2:9: error: duplicate case name 'same' (first at rules/tests/ops/a.yaml:1)"
    ]


def test_cases_of_rulesets_not_selected_are_not_read(tmp_path: Path) -> None:
    broken = tmp_path / "rules" / "tests" / "hitl"
    broken.mkdir(parents=True)
    (broken / "x.yaml").write_text("- name: [\n")
    rulesets = {"ops": cast(Ruleset, None), "hitl": cast(Ruleset, None)}
    assert load_cases(tmp_path / "rules", rulesets, ["ops"]) == []

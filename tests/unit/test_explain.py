"""Plain-language sentences and source snippets for reviewers (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.authoring.rulesets import load_ruleset
from service.domain import expr
from service.domain.explain import condition_with_values, rego_block, split_location, value_text, why_not, yaml_block
from service.domain.record import canonical, normalize_time

VALUES = {
    "process": {"attempts": 3, "type": "ORDER"},
    "resource": {"status": "offline", "capacity": 0, "id": "w-1"},
    "candidates": [{"id": "w-2", "status": "available"}],
    "params": {"max_attempts": 3},
}


@pytest.mark.parametrize(
    ("condition", "sentence"),
    [
        ("process.attempts >= params.max_attempts", "process.attempts 3 ≥ params.max_attempts 3"),
        (
            'resource.status != "available" or resource.capacity == 0',
            'resource.status "offline" ≠ "available" or resource.capacity 0 = 0',
        ),
        ("true", "always"),
        ("process.attempts * 2 <= 10", "process.attempts 3 * 2 ≤ 10"),
        ('len(filter(candidates, item.status == "available")) > 0',
         'len(filter(candidates [{"id":"w-2","status":"available"}], item.status = "available")) > 0'),
        ("resource.missing.deeper == null", "resource.missing.deeper null = null"),
    ],
)  # fmt: skip
def test_a_condition_reads_with_the_actual_value_of_each_path(condition: str, sentence: str) -> None:
    assert condition_with_values(expr.parse(condition), VALUES) == sentence


def test_long_values_are_cut_with_an_ellipsis() -> None:
    assert value_text("x" * 100) == '"' + "x" * 58 + "…"
    assert value_text(0.85) == "0.85"


RULES = """\
rules:
  - id: first
    title: First
    when: a > 1
    then:
      decision: X

      confidence: 1
  - id: second
    when: true
"""


def test_a_rule_snippet_is_its_yaml_item_up_to_the_next_one() -> None:
    assert yaml_block(RULES, 2) == (2, "  - id: first\n    title: First\n    when: a > 1\n    then:\n"
                                      "      decision: X\n\n      confidence: 1")  # fmt: skip
    assert yaml_block(RULES, 9) == (9, "  - id: second\n    when: true")
    assert yaml_block(RULES, 99) == (99, "")


POLICY = """\
package p

# METADATA
# title: Too slow
deny contains msg if {
\tinput.x > 1
\tmsg := "slow"
}

allow := true
"""


def test_a_policy_snippet_is_the_rule_with_its_metadata_comments() -> None:
    assert rego_block(POLICY, 5) == (3, '# METADATA\n# title: Too slow\ndeny contains msg if {\n\tinput.x > 1\n'
                                        '\tmsg := "slow"\n}')  # fmt: skip
    assert rego_block(POLICY, 10) == (10, "allow := true")


def test_a_location_splits_into_file_and_line() -> None:
    assert split_location("rego/a/b.rego:14") == ("rego/a/b.rego", 14)
    assert split_location("nowhere") is None


def test_canonical_json_sorts_keys_keeps_unicode_and_has_no_whitespace() -> None:
    assert canonical({"b": [1, {"z": 1, "a": "é"}], "a": 0.85}) == '{"a":0.85,"b":[1,{"a":"é","z":1}]}'


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-21T09:30:00Z", "2026-11-21T09:30:00.000000+00:00"),
        ("2026-11-21T10:30:00+01:00", "2026-11-21T09:30:00.000000+00:00"),
        ("2026-11-21T09:30:00", "2026-11-21T09:30:00.000000+00:00"),
        ("2026-11-21", "2026-11-21T00:00:00.000000+00:00"),
    ],
)
def test_query_times_are_compared_in_the_stored_utc_form(given: str, stored: str) -> None:
    assert normalize_time(given) == stored


def test_why_not_names_the_first_false_condition_of_each_rule_that_did_not_fire(tmp_path: Path) -> None:
    rules = tmp_path / "why.yaml"
    rules.write_text(WHY_RULESET)
    ruleset = load_ruleset(rules, "rules/why.yaml", [])
    entries = why_not(ruleset, {"a": 1, "b": "x", "items": [1, 2]}, fired={"fallback"})
    assert [e.reason for e in entries] == [
        'both: b == "y" was false (b = "x")',
        "either: a > 5 or len(items) > 3 was false (a = 1, items = [1,2])",
        "divides: 10 / (a - 1) > 1 could not be evaluated (division by zero) (a = 1)",
    ]
    assert (entries[0].id, entries[0].file, entries[0].line) == ("both", "rules/why.yaml", 10)
    assert entries[1].values == {"a": 1, "items": [1, 2]}


WHY_RULESET = """\
name: why
agent: test
description: why-not cases
owner: tests
facts:
  a: {type: int}
  b: {type: str}
  items: {type: list, items: {type: int}}
rules:
  - id: both
    title: Both
    priority: 30
    when: a > 0 and b == "y"
    then: {decision: T.BOTH, confidence: 1, autonomy: L1}
  - id: either
    title: Either
    priority: 20
    when: a > 5 or len(items) > 3
    then: {decision: T.EITHER, confidence: 1, autonomy: L1}
  - id: divides
    title: Divides
    priority: 15
    when: 10 / (a - 1) > 1
    then: {decision: T.DIV, confidence: 1, autonomy: L1}
  - id: fallback
    title: Fallback
    when: true
    then: {decision: T.NONE, confidence: 1, autonomy: L1}
escalation: {decision: T.ESCALATE}
"""

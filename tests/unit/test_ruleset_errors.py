"""Broken ruleset files are reported as file:line:column problems, all of them at once.

Each case starts from the text of rules/ops.yaml and changes one snippet; the
expected positions are 1-based line and column in that edited text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from service.authoring.rulesets import load_ruleset
from service.domain.ruleset import Ruleset
from service.errors import Problem, RulesetInvalid

DISPLAY = "rules/broken.yaml"

Edit = tuple[str, str]
LoadEdited = Callable[..., Ruleset]


@pytest.fixture
def load_edited(tmp_path: Path, ops_text: str) -> LoadEdited:
    """Write ops.yaml with each ``(old, new)`` edit applied (``old`` must occur once) and load it."""

    def load(*edits: Edit) -> Ruleset:
        text = ops_text
        for old, new in edits:
            assert text.count(old) == 1, f"snippet not unique in ops.yaml: {old!r}"
            text = text.replace(old, new)
        path = tmp_path / "ops.yaml"
        path.write_text(text, encoding="utf-8")
        return load_ruleset(path, DISPLAY, [])

    return load


def problems_of(load_edited: LoadEdited, *edits: Edit) -> list[Problem]:
    with pytest.raises(RulesetInvalid) as caught:
        load_edited(*edits)
    assert caught.value.message == f"{DISPLAY}: invalid ruleset"
    return caught.value.problems


def where(problem: Problem) -> tuple[str, int, int]:
    return (problem.file, problem.line, problem.column)


ATTEMPTS_WHEN = "when: process.attempts >= params.max_attempts"
FAILURES_WHEN = "when: history.failures > 0"


def test_an_unedited_copy_loads(load_edited: LoadEdited) -> None:
    ruleset = load_edited()
    assert [rule.id for rule in ruleset.rules] == [
        "escalate-attempts",
        "escalate-failures",
        "reassign-unavailable",
        "retry-after-failure",
        "dispatch",
    ]
    assert ruleset.file == DISPLAY


@pytest.mark.parametrize(
    ("edit", "line", "column", "path", "reason"),
    [
        pytest.param(
            ("owner: platform-operations", "owner: platform-operations: extra"),
            *(9, 27, ""),
            "YAML syntax: mapping values are not allowed here",
            id="yaml-syntax",
        ),
        pytest.param(
            ("  max_failures: 3\n", "  max_failures: 3\n\tbad: 1\n"),
            *(15, 1, ""),
            "YAML syntax: found character '\\t' that cannot start any token",
            id="yaml-tab",
        ),
        pytest.param(
            ("    priority: 50\n", "    priorty: 50\n"),
            *(66, 5, "rules[0].priorty"),
            "unknown key 'priorty'",
            id="unknown-rule-key",
        ),
        pytest.param(
            ("    priority: 50\n", "    priority: high\n"),
            *(66, 15, "rules[0].priority"),
            "Expected `int`, got `str`",
            id="wrong-value-type",
        ),
        pytest.param(
            ("      autonomy: L1\n", "      autonomy: L9\n"),
            *(117, 17, "rules[3].then.autonomy"),
            "Invalid enum value 'L9'",
            id="bad-autonomy",
        ),
        pytest.param(
            (ATTEMPTS_WHEN, "when: process.attempts >= >= params.max_attempts"),
            *(67, 31, "rules[0].when"),
            "expected a value, found '>='",
            id="parse-error",
        ),
        pytest.param(
            (ATTEMPTS_WHEN, 'when: "process.attempts $ params.max_attempts"'),
            *(67, 29, "rules[0].when"),
            "unexpected character '$'",
            id="parse-error-in-quoted-scalar",
        ),
        pytest.param(
            (ATTEMPTS_WHEN, "when: process.attemps >= params.max_attempts"),
            *(67, 11, "rules[0].when"),
            "unknown fact path 'process.attemps'",
            id="unknown-fact-path",
        ),
        pytest.param(
            (ATTEMPTS_WHEN, "when: process.attempts >= params.max_attempt"),
            *(67, 31, "rules[0].when"),
            "unknown param 'params.max_attempt'",
            id="unknown-param",
        ),
        pytest.param(
            (FAILURES_WHEN, "when: histry.failures > 0"),
            *(113, 11, "rules[3].when"),
            "unknown name 'histry'",
            id="unknown-root",
        ),
        pytest.param(
            (FAILURES_WHEN, "when: count(history.failures) > 0"),
            *(113, 11, "rules[3].when"),
            "unknown function 'count'",
            id="unknown-function",
        ),
        pytest.param(
            (FAILURES_WHEN, "when: history.failures > 1 / 0"),
            *(113, 30, "rules[3].when"),
            "division by zero",
            id="constant-division",
        ),
        pytest.param(
            ("id: escalate-failures", "id: escalate-attempts"),
            *(77, 9, "rules[1].id"),
            "duplicate rule id 'escalate-attempts'",
            id="duplicate-id",
        ),
        pytest.param(
            ("str(process.attempts) + ", "str(process.attempt) + "),
            *(75, 38, "rules[0].then.actions[0].reason"),
            "unknown fact path 'process.attempt'",
            id="unknown-path-in-quoted-output",
        ),
        pytest.param(
            (", params.max_backoff_seconds)", ", params.max_backoff)"),
            *(121, 85, "rules[3].then.actions[0].backoff_seconds"),
            "unknown param 'params.max_backoff'",
            id="unknown-param-in-output",
        ),
    ],
)
def test_one_broken_thing_is_reported_at_its_position(
    load_edited: LoadEdited, edit: Edit, line: int, column: int, path: str, reason: str
) -> None:
    [problem] = problems_of(load_edited, edit)
    assert (where(problem), problem.path) == ((DISPLAY, line, column), path)
    assert reason in problem.reason
    assert problem.severity == "error"


def test_an_unknown_key_names_the_rule_it_sits_in(load_edited: LoadEdited) -> None:
    [problem] = problems_of(load_edited, ("    priority: 50\n", "    priorty: 50\n"))
    assert problem.path == "rules[0].priorty"
    assert str(problem) == "rules/broken.yaml:66:5: error: rules[0].priorty: unknown key 'priorty'"


def test_an_unknown_function_lists_the_known_ones(load_edited: LoadEdited) -> None:
    [problem] = problems_of(load_edited, (FAILURES_WHEN, "when: count(history.failures) > 0"))
    assert problem.reason == (
        "unknown function 'count' (known: abs, ceil, filter, first, floor, get, len, max, min, round, sort, str)"
    )


def test_an_unknown_root_lists_the_fact_names(load_edited: LoadEdited) -> None:
    [problem] = problems_of(load_edited, (FAILURES_WHEN, "when: histry.failures > 0"))
    assert problem.reason == "unknown name 'histry' (facts are: candidates, history, org_id, process, resource)"


def test_two_broken_rules_are_reported_together_in_file_order(load_edited: LoadEdited) -> None:
    problems = problems_of(
        load_edited,
        (ATTEMPTS_WHEN, "when: process.attemps >= params.max_attempts"),
        (FAILURES_WHEN, "when: count(history.failures) > 0"),
    )
    assert [(p.line, p.column, p.reason.split(" (")[0]) for p in problems] == [
        (67, 11, "unknown fact path 'process.attemps'"),
        (113, 11, "unknown function 'count'"),
    ]


def test_two_mistakes_in_one_expression_are_both_reported(load_edited: LoadEdited) -> None:
    problems = problems_of(load_edited, (ATTEMPTS_WHEN, "when: process.attemps >= params.max_attempt"))
    assert [(p.line, p.column, p.reason) for p in problems] == [
        (67, 11, "unknown fact path 'process.attemps'"),
        (67, 30, "unknown param 'params.max_attempt'"),
    ]


def test_a_duplicate_id_and_a_bad_expression_are_reported_together(load_edited: LoadEdited) -> None:
    problems = problems_of(
        load_edited,
        ("id: escalate-failures", "id: escalate-attempts"),
        (FAILURES_WHEN, "when: history.failures >"),
    )
    assert [(p.line, p.column, p.reason) for p in problems] == [
        (77, 9, "duplicate rule id 'escalate-attempts'"),
        (113, 29, "expected a value, found end of expression"),
    ]


def test_a_file_that_is_not_utf8_is_one_problem_at_the_start(tmp_path: Path) -> None:
    path = tmp_path / "ops.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(path, DISPLAY, [])
    assert caught.value.problems == [Problem("file is not UTF-8", file=DISPLAY, line=1, column=1)]


def test_an_unknown_key_inside_a_fact_spec_is_found_under_its_fact(load_edited: LoadEdited) -> None:
    # An unquoted comma in a flow mapping makes "the process" a key of org_id's spec.
    (problem,) = problems_of(
        load_edited,
        ("description: The organisation the process belongs to.}", "description: The organisation, the process}"),
    )
    assert str(problem) == "rules/broken.yaml:19:61: error: facts.org_id.the process: unknown key 'the process'"


# resource.capacity: process fields with the same keys come before it, candidates' after it.
CAPACITY = "fields:\n      id: {type: str, min_length: 1}\n      capacity: {type: int, ge: 0}\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "{type: int, gt: zero, description: Service level in seconds.}",
            "rules/broken.yaml:24:28: error: facts.process.fields.sla.gt: Expected `float | null`, got `str`",
        ),
        (
            "{type: integer, ge: 0}",
            "rules/broken.yaml:30:24: error: facts.resource.fields.capacity.type: Invalid enum value 'integer'",
        ),
        (
            '{type: int, ge: "zero"}',
            "rules/broken.yaml:30:33: error: facts.resource.fields.capacity.ge: Expected `float | null`, got `str`",
        ),
        (
            "{ge: 0}",
            "rules/broken.yaml:30:17: error: facts.resource.fields.capacity: Object missing required field `type`",
        ),
    ],
)
def test_a_bad_value_in_a_fact_spec_is_found_in_its_own_fact_not_the_first_with_that_key(
    load_edited: LoadEdited, spec: str, expected: str
) -> None:
    if "sla" in expected:
        edit = ("sla: {type: int, gt: 0, description: Service level in seconds.}", f"sla: {spec}")
    else:
        edit = (CAPACITY, CAPACITY.replace("{type: int, ge: 0}", spec))
    (problem,) = problems_of(load_edited, edit)
    assert str(problem) == expected


ATTEMPTS_SPEC = "attempts: {type: int, ge: 0}"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "attempts: {type: int, ge: 0, le_field: slaa}",
            "rules/broken.yaml:25:46: error: facts.process.fields.attempts.le_field: "
            "le_field must name another int or number field beside 'attempts'",
        ),
        (
            "attempts: {type: int, ge: 0, ge_field: type}",
            "rules/broken.yaml:25:46: error: facts.process.fields.attempts.ge_field: "
            "ge_field must name another int or number field beside 'attempts'",
        ),
        (
            "attempts: {type: int, ge: 0, le_field: attempts}",
            "rules/broken.yaml:25:46: error: facts.process.fields.attempts.le_field: "
            "le_field must name another int or number field beside 'attempts'",
        ),
        (
            "type: {type: str, min_length: 1, le_field: sla}",
            "rules/broken.yaml:23:50: error: facts.process.fields.type.le_field: "
            "le_field bounds a number, and 'type' is of type str",
        ),
    ],
)
def test_a_sibling_bound_must_name_a_number_field_beside_a_number_field(
    load_edited: LoadEdited, spec: str, expected: str
) -> None:
    old = "type: {type: str, min_length: 1}" if spec.startswith("type:") else ATTEMPTS_SPEC
    (problem,) = problems_of(load_edited, (old, spec))
    assert str(problem) == expected


def test_a_sibling_bound_naming_a_number_beside_it_loads(load_edited: LoadEdited) -> None:
    ruleset = load_edited((ATTEMPTS_SPEC, "attempts: {type: int, ge: 0, le_field: sla}"))
    assert ruleset.facts["process"].fields is not None
    assert ruleset.facts["process"].fields["attempts"].le_field == "sla"

"""Rule test cases (``rules/tests/<ruleset>/*.yaml``): their format, loading them with
file:line:column errors, comparing an outcome with a case's expectations, and coverage.

Pure: reads text, never touches the engine or OPA.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from service.authoring.policies import PolicyBundle
from service.authoring.yamlsrc import Source, SyntaxProblem, load, validation_problem
from service.domain.decision import Outcome
from service.domain.ruleset import Ruleset
from service.errors import Problem, RulesetInvalid

CONFIDENCE_TOLERANCE = 1e-9

# --- the file format ----------------------------------------------------------


class Expect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Any subset of the outcome a case expects; an absent key is not compared."""

    decision_type: str | msgspec.UnsetType = msgspec.UNSET
    confidence: float | msgspec.UnsetType = msgspec.UNSET
    fired: list[str] | msgspec.UnsetType = msgspec.UNSET
    won: str | list[str] | None | msgspec.UnsetType = msgspec.UNSET
    violations: list[str] | msgspec.UnsetType = msgspec.UNSET
    execution_status: Literal["APPROVED", "ESCALATED", "PENDING_APPROVAL"] | msgspec.UnsetType = msgspec.UNSET
    actions: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET


class CaseSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    facts: dict[str, Any]
    expect: Expect


class Case(msgspec.Struct, frozen=True):
    ruleset: str
    name: str
    facts: dict[str, Any]
    expect: Expect
    file: str
    line: int
    column: int


# --- loading ------------------------------------------------------------------


def case_dirs(rules_dir: Path) -> dict[str, Path]:
    """``rules/tests/<ruleset>/`` directories by ruleset name."""
    root = rules_dir / "tests"
    if not root.is_dir():
        return {}
    return {path.name: path for path in sorted(root.iterdir()) if path.is_dir()}


def load_cases(rules_dir: Path, rulesets: dict[str, Ruleset], selected: list[str]) -> list[Case]:
    """Every case of the ``selected`` rulesets; raises RulesetInvalid listing every problem found,
    including a case directory that names no ruleset."""
    problems: list[Problem] = []
    cases: list[Case] = []
    dirs = case_dirs(rules_dir)
    for name, directory in dirs.items():
        display = f"{rules_dir.name}/tests/{name}"
        if name not in rulesets:
            known = ", ".join(sorted(rulesets)) or "none"
            reason = f"case directory {name!r} names no ruleset (no {rules_dir.name}/{name}.yaml; known: {known})"
            problems.append(Problem(reason, file=display, line=1, column=1))
        elif name in selected:
            found, errors = _ruleset_cases(directory, display, name)
            cases.extend(found)
            problems.extend(errors)
    if problems:
        raise RulesetInvalid(f"{len(problems)} problem(s) in the test cases", problems)
    return cases


def _ruleset_cases(directory: Path, display: str, ruleset: str) -> tuple[list[Case], list[Problem]]:
    cases: list[Case] = []
    problems: list[Problem] = []
    seen: dict[str, Case] = {}
    for path in sorted(p for p in directory.glob("*.yaml") if p.is_file()):
        try:
            found = parse_cases(path.read_bytes(), f"{display}/{path.name}", ruleset)
        except RulesetInvalid as error:
            problems.extend(error.problems)
            continue
        for case in found:
            if case.name in seen:
                first = seen[case.name]
                reason = f"duplicate case name {case.name!r} (first at {first.file}:{first.line})"
                problems.append(Problem(reason, file=case.file, line=case.line, column=case.column))
            seen.setdefault(case.name, case)
            cases.append(case)
    return cases, problems


def parse_cases(content: bytes, display: str, ruleset: str) -> list[Case]:
    """The cases of one file; raises RulesetInvalid with file:line:column."""
    try:
        source = load(content.decode("utf-8"), display)
    except SyntaxProblem as error:
        raise RulesetInvalid(f"{display}: invalid test cases", [error.problem]) from None
    except UnicodeDecodeError:
        problem = Problem("file is not UTF-8", file=display, line=1, column=1)
        raise RulesetInvalid(f"{display}: invalid test cases", [problem]) from None
    if not isinstance(source.data, list) or not source.data:
        problem = source.problem((), "a case file is a non-empty YAML list of cases ({name, facts, expect})")
        raise RulesetInvalid(f"{display}: invalid test cases", [problem])
    try:
        specs = msgspec.convert(source.data, list[CaseSpec])
    except msgspec.ValidationError as error:
        raise RulesetInvalid(f"{display}: invalid test cases", [validation_problem(source, error)]) from None
    return [_case(source, ruleset, index, spec) for index, spec in enumerate(specs)]


def _case(source: Source, ruleset: str, index: int, spec: CaseSpec) -> Case:
    mark = source.locate((index, "name"))
    return Case(ruleset, spec.name, spec.facts, spec.expect, source.file, mark.line, mark.column)


# --- comparing ----------------------------------------------------------------


class Mismatch(msgspec.Struct, frozen=True):
    key: str
    expected: Any
    actual: Any


def compare(expect: Expect, actual: dict[str, Any]) -> list[Mismatch]:
    """Each given expectation that the actual values do not meet, in the format's key order."""
    mismatches: list[Mismatch] = []
    for key in expect.__struct_fields__:
        expected = getattr(expect, key)
        if expected is msgspec.UNSET:
            continue
        if not _matches(key, expected, actual[key]):
            mismatches.append(Mismatch(key, expected, actual[key]))
    return mismatches


def _matches(key: str, expected: Any, actual: Any) -> bool:
    if key == "confidence":
        return isinstance(actual, (int, float)) and _equal(expected, actual)
    if key in ("fired", "violations"):
        return set(expected) == set(actual)
    if key == "won":
        return _as_set(expected) == _as_set(actual)
    if key == "actions":
        return len(expected) == len(actual) and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)


def _as_set(value: str | list[str] | None) -> set[str]:
    """A single winner and a one-element list of winners say the same thing."""
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def _subset(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(name in actual and _equal(value, actual[name]) for name, value in expected.items())


def _equal(expected: Any, actual: Any) -> bool:
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool):
        return math.isclose(expected, actual, rel_tol=0.0, abs_tol=CONFIDENCE_TOLERANCE)
    return bool(expected == actual)


# --- coverage -----------------------------------------------------------------


class Policy(msgspec.Struct, frozen=True):
    """A guardrail policy of a ruleset: the package ``guardrails.<ruleset>.<name>``."""

    name: str  # as violations name it: "<ruleset>.<name>"
    file: str
    line: int


_PACKAGE = re.compile(r"^package\s+guardrails\.([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\s*$")


def ruleset_policies(bundle: PolicyBundle, ruleset: str) -> list[Policy]:
    """The policies the guardrails entrypoint evaluates for ``ruleset``, where their packages are declared."""
    found: dict[str, Policy] = {}
    for file in bundle.files:
        if not file.path.endswith(".rego"):
            continue
        for number, line in enumerate(file.content.decode("utf-8", "replace").splitlines(), start=1):
            match = _PACKAGE.match(line.strip())
            if match and match.group(1) == ruleset:
                name = f"{ruleset}.{match.group(2)}"
                found.setdefault(name, Policy(name, file.path, number))
    return sorted(found.values(), key=lambda p: p.name)


def triggered_policies(outcome: Outcome) -> set[str]:
    """Policies that denied or held this outcome for approval."""
    return {v.policy for v in (*outcome.verdict.violations, *outcome.verdict.approvals)}

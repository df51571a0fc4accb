"""``opa check`` and ``opa test`` over ``rego/``, their findings as file:line:column.

``entrypoint_contract_test.rego`` beside this module is the guardrails entrypoint's contract: opsgate
runs it with the policies' own tests whenever it loads a version, so an entrypoint that would let a
denied or approval-bound action through is refused even when rego/ has no test of it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec

from service.adapters.opa.binary import find_opa
from service.authoring.policies import PolicyTests
from service.errors import Problem, RulesetInvalid


def check_policies(opa_bin: str, rego_dir: Path, display_root: str = "rego") -> list[Problem]:
    """``opa check --strict``, its errors as file:line:column problems."""
    result = subprocess.run(
        [opa_bin, "check", "--strict", "--format", "json", str(rego_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 0:
        return []
    try:
        errors = json.loads(result.stdout or result.stderr).get("errors", [])
    except json.JSONDecodeError:
        return [Problem(f"opa check failed: {(result.stderr or result.stdout).strip()}", file=display_root)]
    return [_opa_problem(error, rego_dir, display_root) for error in errors]


def require_valid_policies(opa_bin: str | None, rego_dir: Path, display_root: str, whose: str = "the") -> None:
    """``check_policies`` as a gate: RulesetInvalid, with every file:line:column problem, unless clean."""
    problems = check_policies(find_opa(opa_bin), rego_dir, display_root)
    if problems:
        raise RulesetInvalid(f"{len(problems)} problem(s) in {whose} policies", problems)


def _opa_problem(error: dict[str, Any], rego_dir: Path, display_root: str) -> Problem:
    location = error.get("location") or {}
    file = _displayed(str(location.get("file", "")), rego_dir, display_root)
    reason = f"{error.get('code', 'rego_error')}: {error.get('message', '')}"
    return Problem(reason, file=file, line=int(location.get("row", 0)), column=int(location.get("col", 0)))


ENTRYPOINT_CONTRACT = Path(__file__).with_name("entrypoint_contract_test.rego")
_CONTRACT_SHOWN_AS = "service/adapters/opa/entrypoint_contract_test.rego"


class _TestRun(msgspec.Struct, frozen=True):
    tests: list[dict[str, Any]] | None  # None: opa test gave no results (compile errors)
    returncode: int
    output: str  # what it printed when it gave no results


def _opa_test(opa_bin: str, paths: list[Path]) -> _TestRun:
    result = subprocess.run(
        [opa_bin, "test", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        tests = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        tests = None
    output = (result.stderr or result.stdout).strip() or f"opa test exited with {result.returncode}"
    return _TestRun(tests if isinstance(tests, list) else None, result.returncode, output)


def _failed(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tests if t.get("fail") or t.get("error")]


def run_policy_tests(
    opa_bin: str, rego_dir: Path, display_root: str = "rego", *, contract: bool = False
) -> PolicyTests:
    """``opa test --format json`` over ``rego_dir`` (and the entrypoint's contract when ``contract``);
    a failing, erroring or uncompilable test fails."""
    run = _opa_test(opa_bin, [rego_dir, *([ENTRYPOINT_CONTRACT] if contract else [])])
    if run.tests is None:
        return PolicyTests(display_root, False, 0, 0, [], error=run.output)
    failed = _failed(run.tests)
    failures = [_test_name(t, rego_dir, display_root) for t in failed]
    passed = run.returncode == 0 and not failed and bool(run.tests)
    error = None if passed or failed else f"opa test exited with {run.returncode} and no failing test"
    return PolicyTests(display_root, passed, len(run.tests) - len(failed), len(failed), failures, error)


def require_passing_policy_tests(opa_bin: str | None, rego_dir: Path, display_root: str) -> None:
    """``opa test`` over ``rego_dir`` and the entrypoint's contract, as a gate: RulesetInvalid naming
    every failing test with its file:line, unless every test passes."""
    run = _opa_test(find_opa(opa_bin), [rego_dir, ENTRYPOINT_CONTRACT])
    if run.tests is None:
        raise RulesetInvalid("the policy tests could not run", [Problem(run.output, file=display_root)])
    problems = [_test_problem(t, rego_dir, display_root) for t in _failed(run.tests)]
    if problems:
        raise RulesetInvalid(f"{len(problems)} policy test(s) failed", problems)
    if run.returncode != 0:
        raise RulesetInvalid("the policy tests failed", [Problem(run.output, file=display_root)])


def _test_name(test: dict[str, Any], rego_dir: Path, display_root: str) -> str:
    location = test.get("location") or {}
    file = _displayed(str(location.get("file", "")), rego_dir, display_root)
    return f"{test.get('package', '')}.{test.get('name', '')} ({file}:{location.get('row', 0)}){_why(test)}"


def _test_problem(test: dict[str, Any], rego_dir: Path, display_root: str) -> Problem:
    location = test.get("location") or {}
    file = _displayed(str(location.get("file", "")), rego_dir, display_root)
    reason = f"{test.get('package', '')}.{test.get('name', '')} failed{_why(test)}"
    return Problem(reason, file=file, line=int(location.get("row", 0)), column=int(location.get("col", 0)))


def _why(test: dict[str, Any]) -> str:
    error = test.get("error")
    return f": {error.get('message', error) if isinstance(error, dict) else error}" if error else ""


def _displayed(file: str, rego_dir: Path, display_root: str) -> str:
    """A path opa printed, as authors see it (under ``display_root`` rather than the directory checked)."""
    if file == str(ENTRYPOINT_CONTRACT):
        return _CONTRACT_SHOWN_AS
    return display_root + file[len(str(rego_dir)) :] if file.startswith(str(rego_dir)) else file

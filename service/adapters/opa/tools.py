"""``opa check`` and ``opa test`` over ``rego/``, their findings as file:line:column."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

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


def run_policy_tests(opa_bin: str, rego_dir: Path, display_root: str = "rego") -> PolicyTests:
    """``opa test --format json`` over ``rego_dir``; a failing, erroring or uncompilable test fails."""
    result = subprocess.run(
        [opa_bin, "test", "--format", "json", str(rego_dir)], capture_output=True, text=True, timeout=300, check=False
    )
    try:
        tests = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        tests = None
    if not isinstance(tests, list):  # compile errors: no results, the reasons on stderr
        reason = (result.stderr or result.stdout).strip() or f"opa test exited with {result.returncode}"
        return PolicyTests(display_root, False, 0, 0, [], error=reason)
    failed = [t for t in tests if t.get("fail") or t.get("error")]
    failures = [_test_name(t, rego_dir, display_root) for t in failed]
    passed = result.returncode == 0 and not failed and bool(tests)
    error = None if passed or failed else f"opa test exited with {result.returncode} and no failing test"
    return PolicyTests(display_root, passed, len(tests) - len(failed), len(failed), failures, error)


def _test_name(test: dict[str, Any], rego_dir: Path, display_root: str) -> str:
    location = test.get("location") or {}
    file = _displayed(str(location.get("file", "")), rego_dir, display_root)
    error = test.get("error")
    why = f": {error.get('message', error) if isinstance(error, dict) else error}" if error else ""
    return f"{test.get('package', '')}.{test.get('name', '')} ({file}:{location.get('row', 0)}){why}"


def _displayed(file: str, rego_dir: Path, display_root: str) -> str:
    """A path opa printed, as authors see it (under ``display_root`` rather than the directory checked)."""
    return display_root + file[len(str(rego_dir)) :] if file.startswith(str(rego_dir)) else file

"""Acceptance: `opsgate check` on copies of rules/ops.yaml and rego/, each with one planted mistake.

Every expected position is written out by hand from the shipped rules/ops.yaml
and retry_limit.rego (1-based line and column in the edited copy); the command
runs as a real subprocess with the real opa binary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import opsgate

OPS = "ops.yaml"
RETRY_LIMIT = "guardrails/ops/retry_limit/retry_limit.rego"
ATTEMPTS_WHEN = "when: process.attempts >= params.max_attempts"

# (file, (old, new), expected line of output, exit code)
CASES = [
    pytest.param(
        OPS, ("owner: platform-operations", "owner: platform-operations: extra"),
        "rules/ops.yaml:9:27: error: YAML syntax: mapping values are not allowed here", 1,
        id="yaml-syntax",
    ),
    pytest.param(
        OPS, ("    priority: 50\n", "    priorty: 50\n"),
        "rules/ops.yaml:66:5: error: rules[0].priorty: unknown key 'priorty'", 1,
        id="unknown-key",
    ),
    pytest.param(
        OPS, (ATTEMPTS_WHEN, "when: process.attempts >= >= params.max_attempts"),
        "rules/ops.yaml:67:31: error: rules[0].when: expected a value, found '>='", 1,
        id="expression-parse-error",
    ),
    pytest.param(
        OPS, (ATTEMPTS_WHEN, "when: process.attemps >= params.max_attempts"),
        "rules/ops.yaml:67:11: error: rules[0].when: unknown fact path 'process.attemps'", 1,
        id="unknown-fact-path",
    ),
    pytest.param(
        OPS, (ATTEMPTS_WHEN, "when: process.attempts >= params.max_attempt"),
        "rules/ops.yaml:67:31: error: rules[0].when: unknown param 'params.max_attempt'", 1,
        id="unknown-param",
    ),
    pytest.param(
        OPS, ("when: history.failures > 0", 'when: history.failures > "0"'),
        "rules/ops.yaml:113:30: error: rules[3].when: type mismatch: 'history.failures' is number,"
        " compared with str (never true)", 1,
        id="type-mismatch",
    ),
    pytest.param(
        OPS, ("id: escalate-failures", "id: escalate-attempts"),
        "rules/ops.yaml:77:9: error: rules[1].id: duplicate rule id 'escalate-attempts'", 1,
        id="duplicate-rule-id",
    ),
    pytest.param(
        OPS, ("when: true", "when: process.attempts < 3"),
        "rules/ops.yaml:62:1: warning: rules: hit_policy 'first' without a fallback: no rule has 'when: true',"
        " so facts that match no rule get no proposal (add an unconditional rule at the lowest priority)", 0,
        id="first-without-fallback",
    ),
    pytest.param(
        OPS, ("    priority: 40\n", "    priority: 15\n"),
        "rules/ops.yaml:81:11: warning: rules[1].when: rule 'escalate-failures' can never win:"
        " rule 'retry-after-failure' (priority 20) ranks above it and matches whenever it does", 0,
        id="shadowed-rule",
    ),
    pytest.param(
        RETRY_LIMIT, ("attempts >= _max_attempts\n", "attempts >= _undefined_limit\n"),
        # opa places it at the start of the expression, after the line's tab
        "rego/guardrails/ops/retry_limit/retry_limit.rego:20:2: error: rego_unsafe_var_error:"
        " var _undefined_limit is unsafe", 1,
        id="rego-error",
    ),
]  # fmt: skip


def check(rules: Path, rego: Path, opa_bin: str) -> subprocess.CompletedProcess[str]:
    return opsgate("check", "--rules-dir", str(rules), "--rego-dir", str(rego), opa_bin=opa_bin, timeout=120)


def plant(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"snippet not unique in {path.name}: {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize(("file", "edit", "expected", "exit_code"), CASES)
def test_check_reports_each_planted_mistake_at_its_position(
    opa_bin: str, ops_only_dirs: tuple[Path, Path], file: str, edit: tuple[str, str], expected: str, exit_code: int
) -> None:
    rules, rego = ops_only_dirs
    plant(rules / file if file == OPS else rego / file, *edit)
    result = check(rules, rego, opa_bin)
    assert result.returncode == exit_code, result.stderr
    assert result.stderr.splitlines()[0] == expected
    if exit_code == 0:
        assert result.stdout.strip() == "ok: 5 rules in " + str(rules) + ", policies in " + str(rego) + ", 1 warning(s)"
    else:
        assert result.stderr.splitlines()[-1] == "1 error(s)"


def test_the_unedited_copy_is_clean(opa_bin: str, ops_only_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_only_dirs
    result = check(rules, rego, opa_bin)
    assert (result.returncode, result.stderr) == (0, "")

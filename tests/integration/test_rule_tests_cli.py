"""opsgate test: the shipped ops cases through the real CLI, the real engine and the real OPA."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE_FACTS, copy_ops_only, opsgate, tables

OPS_RULES = ["escalate-attempts", "escalate-failures", "reassign-unavailable", "retry-after-failure", "dispatch"]


@pytest.fixture
def ops_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """rules/ and rego/ holding only the ops ruleset, its cases and its policies (with their tests)."""
    return copy_ops_only(tmp_path, cases=True)


def run_test(rules: Path, rego: Path, *args: str, opa_bin: str) -> tuple[int, str, str]:
    result = opsgate("test", "--rules", str(rules), "--rego", str(rego), *args, opa_bin=opa_bin)
    return result.returncode, result.stdout, result.stderr


def test_the_shipped_ops_cases_pass_with_every_rule_covered(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    code, out, err = run_test(*ops_dirs, "--ruleset", "ops", "--min-coverage", "100", opa_bin=opa_bin)
    assert code == 0, out + err
    assert "PASS ops: one failure at the first attempt retries after 60 seconds (rules/tests/ops/retry.yaml:4)" in out
    assert "FAIL" not in out
    assert "coverage ops: 11 case(s); rules 5/5 (100%); guardrail policies 1/4 triggered" in out
    assert "rule not fired" not in out
    assert (
        "policy not triggered by any case: ops.retry_limit (rego/guardrails/ops/retry_limit/retry_limit.rego:4)" in out
    )
    assert "opa test rego: passed (" in out
    assert out.rstrip().splitlines()[-1] == (
        "ok: 11 case(s), 11 passed, 0 failed; rule coverage 100.0% (5/5 rules, minimum 100%); opa test passed"
    )


def test_a_changed_expectation_fails_naming_the_case_the_key_and_both_values(
    opa_bin: str, ops_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_dirs
    retry = rules / "tests" / "ops" / "retry.yaml"
    text = retry.read_text()
    assert text.count("confidence: 0.7\n") == 1
    retry.write_text(text.replace("confidence: 0.7\n", "confidence: 0.75\n"))
    code, out, _ = run_test(rules, rego, "--ruleset", "ops", opa_bin=opa_bin)
    assert code == 1
    lines = out.splitlines()
    failed = lines.index(
        "FAIL ops: one failure at the first attempt retries after 60 seconds (rules/tests/ops/retry.yaml:4)"
    )
    assert lines[failed + 1] == "    confidence: expected 0.75, actual 0.7"
    assert lines[-1].startswith("FAILED: 11 case(s), 10 passed, 1 failed;")


def test_facts_that_fail_the_schema_fail_the_case_with_the_field_and_reason(
    opa_bin: str, ops_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_dirs
    case = {"name": "negative failures", "facts": {**EXAMPLE_FACTS, "history": {"failures": -1, "latency": 5}},
            "expect": {"decision_type": "OPS.DISPATCH"}}  # fmt: skip
    (rules / "tests" / "ops" / "zz_bad_facts.yaml").write_text(yaml.safe_dump([case], sort_keys=False))
    code, out, _ = run_test(rules, rego, "--ruleset", "ops", opa_bin=opa_bin)
    assert code == 1
    lines = out.splitlines()
    failed = lines.index("FAIL ops: negative failures (rules/tests/ops/zz_bad_facts.yaml:1)")
    assert lines[failed + 1] == "    facts do not fit the fact schema: history.failures: Expected `int` >= 0"


def test_min_coverage_fails_when_cases_are_dropped(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    (rules / "tests" / "ops" / "escalate.yaml").unlink()
    code, out, _ = run_test(rules, rego, "--min-coverage", "100", opa_bin=opa_bin)
    assert code == 1
    assert "    rule not fired by any case: escalate-attempts (rules/ops.yaml:63)" in out
    assert "    rule not fired by any case: escalate-failures (rules/ops.yaml:77)" in out
    assert out.rstrip().splitlines()[-1] == (
        "FAILED: 9 case(s), 9 passed, 0 failed; rule coverage 60.0% (3/5 rules, minimum 100%) BELOW MINIMUM; "
        "opa test passed"
    )
    code, out, _ = run_test(rules, rego, "--min-coverage", "60", opa_bin=opa_bin)
    assert code == 0, out


def test_json_output_carries_cases_coverage_and_opa_test(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    (rules / "tests" / "ops" / "reassign.yaml").unlink()
    code, out, _ = run_test(rules, rego, "--format", "json", opa_bin=opa_bin)
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["summary"] == {"cases": 8, "passed": 8, "failed": 0}
    first = report["cases"][0]
    assert first == {
        "ruleset": "ops", "name": "first attempt on an available resource dispatches",
        "file": "rules/tests/ops/dispatch.yaml", "line": 3, "passed": True, "failures": [],
    }  # fmt: skip
    ops = report["coverage"]["rulesets"]["ops"]
    assert ops["cases"] == 8
    # reassign-unavailable still fires in the min_confidence cases of guardrails.yaml
    assert ops["rules"] == {"total": 5, "covered": 5, "uncovered": [], "percent": 100.0}
    assert ops["policies"]["total"] == 4 and ops["policies"]["triggered"] == 1
    assert ops["policies"]["percent"] == 25.0
    assert {p["name"] for p in ops["policies"]["untriggered"]} == {
        "ops.autonomy_ceiling", "ops.reassign_target", "ops.retry_limit"
    }  # fmt: skip
    assert {"rules_total": 5, "rules_covered": 5, "percent": 100.0}.items() <= report["coverage"].items()
    assert report["opa_test"]["passed"] is True and report["opa_test"]["fail_count"] == 0
    assert report["opa_test"]["pass_count"] > 10


def test_a_failing_changed_expectation_shows_in_json_with_expected_and_actual(
    opa_bin: str, ops_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_dirs
    dispatch = rules / "tests" / "ops" / "dispatch.yaml"
    dispatch.write_text(
        dispatch.read_text().replace("fired: [dispatch]\n", "fired: [dispatch, retry-after-failure]\n", 1)
    )
    code, out, _ = run_test(rules, rego, "--format", "json", opa_bin=opa_bin)
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["cases"][0]["failures"] == [
        {"key": "fired", "expected": ["dispatch", "retry-after-failure"], "actual": ["dispatch"]}
    ]


def test_a_malformed_case_file_is_a_load_error_at_file_line_column(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    text = "- name: typo\n  facts: {org_id: 0}\n  expect:\n    decison_type: OPS.RETRY\n"
    (rules / "tests" / "ops" / "typo.yaml").write_text(text)
    (rules / "tests" / "ops" / "syntax.yaml").write_text("- name: [unclosed\n  facts: {}\n")
    code, out, err = run_test(rules, rego, opa_bin=opa_bin)
    assert code == 2
    assert out == ""
    assert "rules/tests/ops/typo.yaml:4:5: error: [0].expect.decison_type: unknown key 'decison_type'" in err
    assert "rules/tests/ops/syntax.yaml:2:8: error: YAML syntax: expected ',' or ']', but got ':'" in err


def test_a_case_directory_without_its_ruleset_is_a_load_error(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    (rules / "tests" / "deploy").mkdir()
    code, _, err = run_test(rules, rego, opa_bin=opa_bin)
    assert code == 2
    assert "rules/tests/deploy:1:1: error: case directory 'deploy' names no ruleset (no rules/deploy.yaml" in err


def test_an_unknown_ruleset_and_a_bad_minimum_are_usage_errors(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    code, _, err = run_test(*ops_dirs, "--ruleset", "nope", opa_bin=opa_bin)
    assert code == 2
    assert "unknown ruleset 'nope' (known: ops)" in err
    code, _, err = run_test(*ops_dirs, "--min-coverage", "120", opa_bin=opa_bin)
    assert code == 2
    assert "--min-coverage" in err


def test_a_failing_rego_test_fails_the_run(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    test = rego / "guardrails" / "ops" / "retry_limit" / "retry_limit_test.rego"
    test.write_text(test.read_text() + "\ntest_fail_on_purpose if {\n\tfalse\n}\n")
    code, out, _ = run_test(rules, rego, opa_bin=opa_bin)
    assert code == 1
    assert "opa test rego: FAILED (" in out
    assert "    FAIL data.guardrails.ops.retry_limit_test.test_fail_on_purpose (rego/guardrails/ops/retry_limit/" in out
    assert out.rstrip().endswith("opa test failed")


def decide_and_log(dirs: tuple[Path, Path], db: Path, facts: dict[str, object], opa_bin: str) -> str:
    rules, rego = dirs
    decided = opsgate("decide", "-", "--rules-dir", str(rules), "--rego-dir", str(rego), "--db", str(db),
                      stdin=json.dumps(facts), opa_bin=opa_bin)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    decision_id: str = json.loads(decided.stdout)["result"]["decision_id"]
    return decision_id


def test_a_logged_decision_becomes_a_case_that_passes(
    opa_bin: str, ops_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, rego = ops_dirs
    db = tmp_path / "decisions.db"
    # min_confidence denies this retry (0.85 - 0.10 - 0.20 = 0.55): the case keeps the violation
    decision_id = decide_and_log(ops_dirs, db, {**EXAMPLE_FACTS, "process": {**EXAMPLE_FACTS["process"], "attempts": 2},
                                      "history": {"failures": 2, "latency": 500}}, opa_bin)  # fmt: skip
    wrote = opsgate("test", "--from-decision", decision_id, "--db", str(db), "--rules", str(rules),
                    "--rego", str(rego), opa_bin=opa_bin)  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    path = rules / "tests" / "ops" / f"{decision_id}.yaml"
    assert wrote.stdout == f"{path}\n"
    text = path.read_text()
    assert text.startswith(f"# From logged decision {decision_id} (")
    assert "# decided by ruleset ops version " in text
    [case] = yaml.safe_load(text)
    assert case["name"] == f"decision {decision_id}"
    assert case["facts"]["history"] == {"failures": 2, "latency": 500}
    assert case["expect"] == {
        "decision_type": "OPS.ESCALATE",
        "confidence": 0.55,
        "fired": ["retry-after-failure", "dispatch"],
        "won": "retry-after-failure",
        "violations": ["OPS-MIN-CONFIDENCE"],
        "execution_status": "ESCALATED",
    }
    code, out, _ = run_test(rules, rego, "--ruleset", "ops", opa_bin=opa_bin)
    assert code == 0, out
    assert f"PASS ops: decision {decision_id} (rules/tests/ops/{decision_id}.yaml:5)" in out
    assert "ok: 12 case(s), 12 passed, 0 failed;" in out


def test_from_decision_takes_a_name_and_never_overwrites(
    opa_bin: str, ops_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, rego = ops_dirs
    db = tmp_path / "decisions.db"
    decision_id = decide_and_log(ops_dirs, db, EXAMPLE_FACTS, opa_bin)
    args = ("test", "--from-decision", decision_id, "--db", str(db), "--rules", str(rules), "--rego", str(rego))
    first = opsgate(*args, "--name", "dispatch seen in production", opa_bin=opa_bin)
    assert first.returncode == 0, first.stderr
    path = rules / "tests" / "ops" / "dispatch-seen-in-production.yaml"
    assert yaml.safe_load(path.read_text())[0]["name"] == "dispatch seen in production"
    before = path.read_text()
    again = opsgate(*args, "--name", "dispatch seen in production", opa_bin=opa_bin)
    assert again.returncode == 2
    assert f"{path} exists; choose another --name or --out" in again.stderr
    assert path.read_text() == before
    missing = opsgate(*args[:2], "no-such-id", *args[3:], opa_bin=opa_bin)
    assert missing.returncode == 2
    assert "no decision 'no-such-id' in the log" in missing.stderr
    nolog = opsgate(*args[:3], "--db", str(tmp_path / "absent.db"), *args[5:], opa_bin=opa_bin)
    assert nolog.returncode == 2
    assert "no decision log at" in nolog.stderr
    assert not (tmp_path / "absent.db").exists()


def test_from_decision_refuses_a_decision_that_failed_closed(
    opa_bin: str, ops_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, rego = ops_dirs
    db = tmp_path / "decisions.db"
    decided = opsgate("decide", "-", "--rules-dir", str(rules), "--rego-dir", str(rego), "--db", str(db),
                      "--opa-url", "http://127.0.0.1:1", stdin=json.dumps(EXAMPLE_FACTS), opa_bin=opa_bin)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    decision_id = json.loads(decided.stdout)["result"]["decision_id"]
    before = sorted(p.name for p in (rules / "tests" / "ops").iterdir())
    wrote = opsgate("test", "--from-decision", decision_id, "--db", str(db), "--rules", str(rules),
                    "--rego", str(rego), opa_bin=opa_bin)  # fmt: skip
    assert wrote.returncode == 2
    assert f"decision {decision_id} has no guardrail verdict (it failed closed: " in wrote.stderr
    assert "it cannot become a test case" in wrote.stderr
    assert sorted(p.name for p in (rules / "tests" / "ops").iterdir()) == before


def test_from_decision_on_a_database_without_a_decision_log_exits_2_and_leaves_it_as_it_was(
    opa_bin: str, ops_dirs: tuple[Path, Path], foreign_db: str
) -> None:
    rules, rego = ops_dirs
    before = tables(foreign_db)
    wrote = opsgate("test", "--from-decision", "some-id", "--db", foreign_db, "--rules", str(rules),
                    "--rego", str(rego), opa_bin=opa_bin)  # fmt: skip
    assert wrote.returncode == 2
    assert wrote.stderr.strip() == f"opsgate: no decision log at {foreign_db} (no log_entries table)"
    assert tables(foreign_db) == before


def test_cases_run_against_the_local_rego_even_when_opsgate_opa_url_names_another_opa(
    opa_bin: str, ops_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, rego = ops_dirs
    # a server on this URL would answer with other policies; nothing listens: the cases must not ask it
    env = {**os.environ, "OPSGATE_OPA_URL": "http://127.0.0.1:1"}
    result = opsgate("test", "--rules", str(rules), "--rego", str(rego), "--ruleset", "ops",
                     opa_bin=opa_bin, env=env, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 11 case(s), 11 passed, 0 failed;" in result.stdout


def test_an_explicit_opa_url_is_refused(opa_bin: str, ops_dirs: tuple[Path, Path]) -> None:
    rules, rego = ops_dirs
    result = opsgate("test", "--rules", str(rules), "--rego", str(rego), "--opa-url", "http://127.0.0.1:8181",
                     opa_bin=opa_bin)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "opsgate: opsgate test runs the cases against its own OPA started from the rego directory "
        "(the one opa test checks); drop --opa-url"
    )
    assert result.stdout == ""

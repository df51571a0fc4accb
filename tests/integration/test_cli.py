"""The opsgate CLI with the real opa binary and the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import EXAMPLE_FACTS, RULES_DIR, opsgate


def test_check_passes_on_the_shipped_rules_and_policies(opa_bin: str) -> None:
    result = opsgate("check", opa_bin=opa_bin)
    assert result.returncode == 0, result.stderr
    # every ruleset in rules/ counts: the expected total is read from the files themselves, not from the output
    count = sum(len(yaml.safe_load(path.read_text())["rules"]) for path in sorted(RULES_DIR.glob("*.yaml")))
    assert count >= 5
    assert result.stdout == f"ok: {count} rules in rules, policies in rego\n"


def test_check_reports_a_broken_rule_as_file_line_column_and_fails(
    opa_bin: str, copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace("when: history.failures > 0", "when: history.failures >> 0"))
    result = opsgate("check", "--rules-dir", str(rules), "--rego-dir", str(rego), opa_bin=opa_bin)
    assert result.returncode == 1
    line = text[: text.index("when: history.failures > 0")].count("\n") + 1
    assert f"rules/ops.yaml:{line}:29: error: rules[3].when: expected a value, found '>'" in result.stderr


def test_check_reports_a_broken_policy_with_its_location(opa_bin: str, copied_dirs: tuple[Path, Path]) -> None:
    rules, rego = copied_dirs
    policy = rego / "guardrails" / "ops" / "retry_limit" / "retry_limit.rego"
    policy.write_text(policy.read_text().replace("attempts >= _max_attempts", "attempts >= _undefined_limit"))
    result = opsgate("check", "--rules-dir", str(rules), "--rego-dir", str(rego), opa_bin=opa_bin)
    assert result.returncode == 1
    line = next(i for i, text in enumerate(policy.read_text().splitlines(), 1) if "_undefined_limit" in text)
    assert f"rego/guardrails/ops/retry_limit/retry_limit.rego:{line}:" in result.stderr
    assert "rego_unsafe_var_error" in result.stderr


def test_decide_evaluates_a_file_of_facts_and_prints_the_response(opa_bin: str, tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(EXAMPLE_FACTS))
    result = opsgate("decide", str(facts), "--db", str(tmp_path / "d.db"), opa_bin=opa_bin)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["result"]["decision"]["decision_type"] == "OPS.DISPATCH"
    assert body["result"]["execution"]["status"] == "APPROVED"


def test_decide_reads_standard_input_and_reports_bad_facts_with_the_field(opa_bin: str, tmp_path: Path) -> None:
    bad = {**EXAMPLE_FACTS, "history": {"failures": -2, "latency": 1}}
    result = opsgate("decide", "-", "--db", str(tmp_path / "d.db"), stdin=json.dumps(bad), opa_bin=opa_bin)
    assert result.returncode == 2
    assert "history.failures: Expected `int` >= 0" in result.stderr


def test_serve_refuses_to_start_on_an_invalid_ruleset(
    opa_bin: str, copied_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, rego = copied_dirs
    (rules / "ops.yaml").write_text((rules / "ops.yaml").read_text().replace("priority: 50", "priorty: 50"))
    result = opsgate("decide", "-", "--rules-dir", str(rules), "--db", str(tmp_path / "d.db"),
                     stdin=json.dumps(EXAMPLE_FACTS), opa_bin=opa_bin)  # fmt: skip
    assert result.returncode == 2
    assert "unknown key 'priorty'" in result.stderr


def test_decide_explain_adds_why_each_other_rule_did_not_fire(opa_bin: str, tmp_path: Path) -> None:
    result = opsgate("decide", "-", "--explain", "--db", str(tmp_path / "d.db"), stdin=json.dumps(EXAMPLE_FACTS),
                     opa_bin=opa_bin)  # fmt: skip
    assert result.returncode == 0, result.stderr
    not_fired = json.loads(result.stdout)["result"]["explanation"]["not_fired"]
    assert [entry["id"] for entry in not_fired] == [
        "escalate-attempts", "escalate-failures", "reassign-unavailable", "retry-after-failure"
    ]  # fmt: skip

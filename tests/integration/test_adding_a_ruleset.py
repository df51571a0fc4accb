"""A policy author adds a decision type with files only, as docs/authoring.md shows: the checks that
``make test`` runs pass on a copy of the tree with the docs' example added, and the new ruleset decides."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import REGO_DIR, ROOT, RULES_DIR, opsgate

CONTRACT = ROOT / "service" / "adapters" / "opa" / "entrypoint_contract_test.rego"
# A file of the example: a path in backquotes ending with a colon, then its fenced block.
EXAMPLE_FILE = re.compile(r"`((?:rules|rego)/[\w/.]*refund[\w/.]*)`:\n\n```\w+\n(.*?)```", re.DOTALL)


def docs_example() -> dict[str, str]:
    """The files of the example decision type in docs/authoring.md, by path."""
    files = dict(EXAMPLE_FILE.findall((ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")))
    assert sorted(files) == [
        "rego/guardrails/refund/max_amount/max_amount.rego",
        "rego/guardrails/refund/max_amount/max_amount_test.rego",
        "rules/refund.yaml",
        "rules/tests/refund/refund.yaml",
    ]
    return files


def tree_with_the_example(tmp_path: Path) -> tuple[Path, Path]:
    rules, rego = tmp_path / "rules", tmp_path / "rego"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(REGO_DIR, rego)
    for path, text in docs_example().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return rules, rego


def opa(opa_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([opa_bin, *args], capture_output=True, text=True, timeout=120, check=False)


def test_a_decision_type_added_as_the_docs_show_passes_every_check_and_decides(tmp_path: Path, opa_bin: str) -> None:
    rules, rego = tree_with_the_example(tmp_path)
    shipped = sum(len(yaml.safe_load(path.read_text())["rules"]) for path in RULES_DIR.glob("*.yaml"))

    check = opsgate("check", "--rules-dir", str(rules), "--rego-dir", str(rego), opa_bin=opa_bin)
    assert (check.returncode, check.stdout) == (0, f"ok: {shipped + 2} rules in {rules}, policies in {rego}\n"), (
        check.stderr
    )

    # make rego-test: formatting, strict compilation, and every policy test with the entrypoint's contract
    assert opa(opa_bin, "fmt", "--diff", "--fail", str(rego)).returncode == 0
    assert opa(opa_bin, "check", "--strict", str(rego)).returncode == 0
    rego_tests = opa(opa_bin, "test", "-v", str(rego), str(CONTRACT))
    assert rego_tests.returncode == 0, rego_tests.stdout
    assert "test_fail_large_refund: PASS" in rego_tests.stdout
    assert opa(opa_bin, "test", "--coverage", "--threshold", "90", str(rego)).returncode == 0

    cases = opsgate("test", "--rules", str(rules), "--rego", str(rego), "--min-coverage", "100", opa_bin=opa_bin)
    assert cases.returncode == 0, cases.stdout + cases.stderr
    assert "PASS refund: a gold customer's refund above 1000 is escalated by the guardrail" in cases.stdout
    assert "coverage refund: 3 case(s); rules 2/2 (100%); guardrail policies 1/1 triggered" in cases.stdout

    facts = {"amount": 40, "customer": {"id": "c-9", "tier": "gold"}}
    decided = opsgate(
        "decide", "--ruleset", "refund", "--rules-dir", str(rules), "--rego-dir", str(rego),
        "--db", str(tmp_path / "log.db"), "-", stdin=json.dumps(facts), opa_bin=opa_bin,
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    result = json.loads(decided.stdout)["result"]
    assert result["decision"]["decision_type"] == "REFUND.PAY"
    assert result["execution"] == {
        "status": "APPROVED",
        "actions": [
            {"type": "REFUND", "autonomy": "L2", "customer_id": "c-9", "amount": 40, "method": "original_payment"}
        ],
    }

"""Acceptance: real decisions (real engine, real OPA) logged, then verified by the CLI and by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service.settings import Settings
from tests.conftest import (
    EXAMPLE_FACTS,
    OPA_TIMEOUT_MS,
    REGO_DIR,
    ROOT,
    RULES_DIR,
    decide_in_process,
    opsgate,
    sql,
    tables,
    verified,
)


def decide_many(db: str, opa_bin: str, count: int) -> list[str]:
    settings = Settings(db=db, writer_id="replica-1", rules_dir=RULES_DIR, rego_dir=REGO_DIR, opa_bin=opa_bin,
                        opa_timeout_ms=OPA_TIMEOUT_MS)  # fmt: skip
    facts = [{**EXAMPLE_FACTS, "history": {"failures": n % 3, "latency": 500}} for n in range(count)]
    requests = ((item, f"caller-{n % 4}") for n, item in enumerate(facts))
    return decide_in_process(settings, requests)


def test_a_thousand_decisions_verify_and_one_edited_field_is_named(log_db: str, opa_bin: str) -> None:
    ids = decide_many(log_db, opa_bin, 1000)
    assert len(set(ids)) == 1000
    assert verified(log_db, opa_bin) == "1000 records verified, chain intact\n1 ruleset version(s) verified\n"

    # the 500th decision was a RETRY (failures 499 % 3 = 1); rewrite it as approved dispatch
    target = ids[499]
    sql(log_db, "UPDATE log_entries SET body = replace(opsgate_body(body), 'OPS.RETRY', 'OPS.DISPATCH') "
                "WHERE decision_id = ?", (target,))  # fmt: skip
    result = opsgate("log", "verify", "--db", log_db, opa_bin=opa_bin)
    assert result.returncode == 1
    assert f"record #500 (writer replica-1, seq 500, decision {target}): hash" in result.stderr
    assert "the record was altered" in result.stderr
    assert result.stderr.startswith("chain broken after 499 good records")


def test_the_documented_twenty_line_script_verifies_the_log_by_itself(tmp_path: Path, opa_bin: str) -> None:
    db = str(tmp_path / "decisions.db")
    decide_many(db, opa_bin, 20)
    script = ROOT / "scripts" / "verify-chain.py"
    assert len(script.read_text().splitlines()) <= 25  # with compressed decision bodies
    ok = subprocess.run([sys.executable, str(script), db], capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout) == (0, "20 records verified, chain intact\n")
    sql(db, "UPDATE log_entries SET body = replace(opsgate_body(body), 'caller-1', 'caller-2') WHERE seq = 6")
    broken = subprocess.run([sys.executable, str(script), db], capture_output=True, text=True, check=False)
    assert (broken.returncode, broken.stderr) == (1, "record #6 (writer replica-1, seq 6): broken chain\n")


def test_log_verify_on_a_database_without_a_decision_log_exits_2_and_creates_nothing(
    foreign_db: str, opa_bin: str
) -> None:
    before = tables(foreign_db)
    result = opsgate("log", "verify", "--db", foreign_db, opa_bin=opa_bin)
    assert result.returncode == 2
    assert result.stderr.strip() == f"opsgate: no decision log at {foreign_db} (no log_entries table)"
    assert tables(foreign_db) == before

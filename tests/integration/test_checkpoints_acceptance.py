"""Acceptance: signed checkpoints catch what the hash chain cannot (truncation, a full re-chain, a forged
append, edited versions and approvals rows), and a proof checks offline.  Real engine, real OPA, SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from service.adapters.attest.signing import generate
from service.domain.record import StoredRecord, canonical, chain_hash, columns
from service.settings import Settings
from tests.conftest import EXAMPLE_FACTS, OPA_TIMEOUT_MS, REGO_DIR, ROOT, RULES_DIR, decide_in_process, opsgate, sql

PENDING_ORG = 7  # the autonomy ceiling of org 7 is L1: its dispatches wait for approval
COLUMNS = ("id, writer, seq, opsgate_body(body), prev_hash, hash, kind, decision_id, created_at, caller, ruleset, "
           "ruleset_version, bundle_revision, decision_type, execution_status, org_id")  # fmt: skip


class Signed:
    def __init__(self, db: str, root: Path, ids: list[str]) -> None:
        self.db, self.root, self.ids = db, root, ids
        self.checkpoints = root / "checkpoints"
        self.public = root / "signing.key.pub"

    def chain_only(self) -> int:
        """``opsgate log verify`` without checkpoints: what the hash chain alone says."""
        return opsgate("log", "verify", "--db", self.db, "--checkpoints", str(self.root / "none")).returncode

    def verify(self) -> subprocess.CompletedProcess[str]:
        return opsgate("log", "verify", "--db", self.db, "--checkpoints", str(self.checkpoints),
                       "--public-key", str(self.public))  # fmt: skip


@pytest.fixture
def signed(log_db: str, tmp_path: Path, opa_bin: str) -> Signed:
    """12 decisions by writer replica-1 in two runs of 6 (each run signs a checkpoint as it starts and a
    final one as it stops: sizes 0, 6, 6, 12); decision 3 of each run waits for approval."""
    generate(tmp_path / "signing.key")
    shutil.copytree(REGO_DIR, tmp_path / "rego")
    autonomy = {"default_max_level": "L3", "orgs": {str(PENDING_ORG): "L1"}}
    (tmp_path / "rego" / "config" / "autonomy" / "data.json").write_text(json.dumps(autonomy))
    settings = Settings(db=log_db, writer_id="replica-1", rules_dir=RULES_DIR, rego_dir=tmp_path / "rego",
                        opa_bin=opa_bin, opa_timeout_ms=OPA_TIMEOUT_MS, signing_key_file=tmp_path / "signing.key",
                        checkpoints_dir=str(tmp_path / "checkpoints"))  # fmt: skip
    ids: list[str] = []
    for _ in range(2):
        facts = [{**EXAMPLE_FACTS, "org_id": PENDING_ORG if n == 2 else 0} for n in range(6)]
        ids += decide_in_process(settings, ((item, f"caller-{n}") for n, item in enumerate(facts)))
    return Signed(log_db, tmp_path, ids)


def rows(db: str) -> list[StoredRecord]:
    return [StoredRecord(*row) for row in sql(db, f"SELECT {COLUMNS} FROM log_entries ORDER BY writer, seq")]


def test_an_untouched_log_verifies_against_its_four_checkpoints(signed: Signed) -> None:
    assert sorted(p.name.rsplit("-", 1)[1] for p in signed.checkpoints.iterdir()) == ["0.json", "12.json", "6.json",
                                                                                       "6.json"]  # fmt: skip
    result = signed.verify()
    assert result.returncode == 0, result.stderr
    assert "12 records verified, chain intact" in result.stdout
    assert "checkpoints: 4 verified against the log, 12 records covered" in result.stdout


def test_deleting_the_newest_three_records_is_named_as_truncation(signed: Signed) -> None:
    sql(signed.db, "DELETE FROM log_fired WHERE entry_id IN (SELECT id FROM log_entries WHERE seq > 9)")
    sql(signed.db, "DELETE FROM log_denied WHERE entry_id IN (SELECT id FROM log_entries WHERE seq > 9)")
    sql(signed.db, "DELETE FROM log_entries WHERE seq > 9")
    assert signed.chain_only() == 0  # the chain alone cannot see it
    result = signed.verify()
    assert result.returncode == 1
    assert "covers 12 records, the log holds 9: records 10..12 are missing (truncated)" in result.stderr


def test_an_edited_record_with_every_hash_recomputed_is_named(signed: Signed) -> None:
    prev = "0" * 64
    for row in rows(signed.db):  # PENDING_APPROVAL -> APPROVED with a forged caller, the chain recomputed
        body = row.body
        if row.seq == 3:
            body = body.replace('"PENDING_APPROVAL"', '"APPROVED"').replace('"caller-2"', '"caller-forged"')
        digest = chain_hash(prev, body)
        cols = columns(msgspec.structs.replace(row, body=body).record())
        sql(signed.db, "UPDATE log_entries SET body = ?, prev_hash = ?, hash = ?, execution_status = ?, caller = ? "
            "WHERE id = ?", (body, prev, digest, cols.execution_status, cols.caller, row.id))  # fmt: skip
        prev = digest
    assert signed.chain_only() == 0  # the chain alone passes
    result = signed.verify()
    assert result.returncode == 1
    assert "writer replica-1: records 1..6 do not hash to the root signed by checkpoint" in result.stderr
    assert "a record among seq 1..6 was altered, replaced or removed" in result.stderr


def test_a_forged_record_appended_after_the_final_checkpoint_is_named(signed: Signed) -> None:
    last = rows(signed.db)[-1]
    record = msgspec.structs.replace(last.record(), decision_id="forged-decision", seq=13)
    body = canonical(record)
    cols = columns(record)
    sql(signed.db, "INSERT INTO log_entries (writer, seq, kind, decision_id, created_at, caller, ruleset, "
        "ruleset_version, bundle_revision, decision_type, execution_status, org_id, body, prev_hash, hash) "
        "VALUES (?, 13, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (last.writer, cols.kind, cols.decision_id, cols.created_at, cols.caller, cols.ruleset, cols.ruleset_version,
         cols.bundle_revision, cols.decision_type, cols.execution_status, cols.org_id, body, last.hash,
         chain_hash(last.hash, body)))  # fmt: skip
    forged = sql(signed.db, "SELECT id FROM log_entries WHERE decision_id = 'forged-decision'")[0][0]
    for table, fields in (("log_fired", "rule_id, won"), ("log_denied", "policy, violation_id")):
        sql(signed.db, f"INSERT INTO {table} (entry_id, {fields}) SELECT ?, {fields} FROM {table} WHERE entry_id = ?",
            (forged, last.id))  # fmt: skip
    assert signed.chain_only() == 0  # the chain alone passes
    result = signed.verify()
    assert result.returncode == 1
    assert "writer replica-1: records 13..13 come after its final checkpoint" in result.stderr


def test_an_edited_versions_row_is_named(signed: Signed) -> None:
    sql(signed.db, """UPDATE versions SET git = '{"commit": "0000forged"}'""")
    result = signed.verify()
    assert result.returncode == 1
    assert "its row (first_loaded_at, rulesets, git, files) differs from checkpoint" in result.stderr
    assert "the versions table was edited" in result.stderr


def test_an_edited_pending_approval_is_named(signed: Signed) -> None:
    pending = signed.ids[2]
    sql(signed.db, "UPDATE pending_approvals SET status = 'EXECUTED', resolved_by = 'mallory' WHERE decision_id = ?",
        (pending,))  # fmt: skip
    result = signed.verify()
    assert result.returncode == 1
    assert (f"pending_approvals: decision {pending}: status, resolved_by differ from the chain (status='EXECUTED', "
            "chain says 'PENDING', resolved_by='mallory', chain says None)") in result.stderr  # fmt: skip


def test_a_checkpoint_with_an_altered_tree_size_fails_its_signature(signed: Signed) -> None:
    final = max(signed.checkpoints.iterdir())
    text = json.loads(final.read_text())
    final.write_text(json.dumps({**text, "tree_size": 11}))
    result = signed.verify()
    assert result.returncode == 1
    assert f"checkpoint {final.name}: its signature does not verify" in result.stderr


def test_a_proof_checks_offline_and_fails_for_an_altered_record(signed: Signed, tmp_path: Path) -> None:
    decision = signed.ids[4]
    made = opsgate("log", "prove", decision, "--db", signed.db, "--checkpoints", str(signed.checkpoints))
    assert made.returncode == 0, made.stderr
    proof = json.loads(made.stdout)
    assert (proof["leaf_index"], proof["checkpoint"]["tree_size"], len(proof["audit_path"])) == (4, 12, 4)
    auditor = tmp_path / "auditor"  # holds the proof and the public key, nothing else
    auditor.mkdir()
    (auditor / "proof.json").write_text(made.stdout)
    shutil.copy(signed.public, auditor / "opsgate.pub")
    checked = opsgate("log", "check-proof", str(auditor / "proof.json"), "--public-key", str(auditor / "opsgate.pub"),
                      env={"PATH": "/usr/bin:/bin", "OPSGATE_DB": str(auditor / "none.db")})  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == (f"ok: record 5 of writer replica-1 is in the tree of 12 records signed at "
                              f"{proof['checkpoint']['time']} by key {proof['checkpoint']['key_id']}\n")  # fmt: skip
    assert sorted(p.name for p in auditor.iterdir()) == ["opsgate.pub", "proof.json"]
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-proof.py"), str(auditor / "proof.json"),
                             str(auditor / "opsgate.pub")], capture_output=True, text=True, check=False)  # fmt: skip
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith(f"ok: decision {decision} is record 5 of writer replica-1, in the tree of 12")

    altered = {**proof, "record": proof["record"].replace('"caller-4"', '"caller-0"')}
    (auditor / "proof.json").write_text(json.dumps(altered))
    refused = opsgate("log", "check-proof", str(auditor / "proof.json"), "--public-key", str(auditor / "opsgate.pub"))
    assert refused.returncode == 1
    assert "the record does not hash to the proof's leaf hash: the record was altered" in refused.stderr
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-proof.py"), str(auditor / "proof.json"),
                             str(auditor / "opsgate.pub")], capture_output=True, text=True, check=False)  # fmt: skip
    assert script.returncode == 1
    assert "do not lead to the signed root" in script.stderr


def test_verify_without_checkpoints_says_truncation_cannot_be_detected(signed: Signed) -> None:
    result = opsgate("log", "verify", "--db", signed.db, "--checkpoints", str(signed.root / "elsewhere"))
    assert result.returncode == 0
    assert "truncation of the newest records cannot be detected" in result.stderr


def test_a_proof_checked_with_another_public_key_names_both_keys(signed: Signed, tmp_path: Path) -> None:
    made = opsgate("log", "prove", signed.ids[0], "--db", signed.db, "--checkpoints", str(signed.checkpoints))
    (tmp_path / "proof.json").write_text(made.stdout)
    other = generate(tmp_path / "other" / "signing.key")
    result = opsgate("log", "check-proof", str(tmp_path / "proof.json"), "--public-key", str(other))
    assert result.returncode == 1
    signer = json.loads(made.stdout)["checkpoint"]["key_id"]
    assert f"FAILED: signed by key {signer}, not by the given key " in result.stderr


def test_keys_signing_writes_a_key_only_its_owner_reads_and_never_overwrites_it(tmp_path: Path) -> None:
    key = tmp_path / "var" / "signing.key"
    made = opsgate("keys", "signing", "--out", str(key))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"generated a checkpoint signing key at {key}")
    assert (key.stat().st_mode & 0o777, key.read_text().startswith("-----BEGIN PRIVATE KEY-----")) == (0o600, True)
    assert (tmp_path / "var" / "signing.key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes()
    again = opsgate("keys", "signing", "--out", str(key))
    assert again.returncode == 2
    assert "exists: a signing key is never overwritten" in again.stderr
    assert key.read_bytes() == before


def test_a_log_rewritten_and_re_signed_with_the_stolen_key_does_not_extend_a_kept_checkpoint(
    signed: Signed, tmp_path: Path, opa_bin: str
) -> None:
    kept = next(p for p in signed.checkpoints.iterdir() if json.loads(p.read_text())["tree_size"] == 6)
    shutil.copy(kept, tmp_path / "kept.json")  # the auditor's copy of a checkpoint of 6 records
    decision = signed.ids[8]

    honest = opsgate("log", "prove", decision, "--db", signed.db, "--checkpoints", str(signed.checkpoints),
                     "--from-size", "6")  # fmt: skip
    (tmp_path / "honest.json").write_text(honest.stdout)
    checked = opsgate("log", "check-proof", str(tmp_path / "honest.json"), "--public-key", str(signed.public),
                      "--earlier", str(tmp_path / "kept.json"))  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.endswith("ok: that tree extends the earlier checkpoint of 6 records signed at "
                                   f"{json.loads(kept.read_text())['time']}\n")  # fmt: skip

    prev = "0" * 64  # rewrite record 2 and every hash after it, then let the service sign the result
    for row in rows(signed.db):
        body = row.body.replace('"caller-1"', '"caller-forged"') if row.seq == 2 else row.body
        digest = chain_hash(prev, body)
        cols = columns(msgspec.structs.replace(row, body=body).record())
        sql(signed.db, "UPDATE log_entries SET body = ?, prev_hash = ?, hash = ?, caller = ? WHERE id = ?",
            (body, prev, digest, cols.caller, row.id))  # fmt: skip
        prev = digest
    settings = Settings(db=signed.db, writer_id="replica-1", rules_dir=RULES_DIR, rego_dir=REGO_DIR, opa_bin=opa_bin,
                        opa_timeout_ms=OPA_TIMEOUT_MS, signing_key_file=signed.root / "signing.key",
                        checkpoints_dir=str(signed.checkpoints))  # fmt: skip
    decide_in_process(settings, [])  # a start signs the rewritten chain with the real key
    forged = opsgate("log", "prove", decision, "--db", signed.db, "--checkpoints", str(signed.checkpoints),
                     "--from-size", "6")  # fmt: skip
    assert forged.returncode == 0, forged.stderr
    (tmp_path / "forged.json").write_text(forged.stdout)
    alone = opsgate("log", "check-proof", str(tmp_path / "forged.json"), "--public-key", str(signed.public))
    assert alone.returncode == 0  # on its own the re-signed proof holds: the key was stolen
    refused = opsgate("log", "check-proof", str(tmp_path / "forged.json"), "--public-key", str(signed.public),
                      "--earlier", str(tmp_path / "kept.json"))  # fmt: skip
    assert refused.returncode == 1
    assert ("FAILED: the checkpoint of 12 records is not an extension of the earlier checkpoint of 6 records "
            f"(signed at {json.loads(kept.read_text())['time']}): the log was rewritten") in refused.stderr  # fmt: skip

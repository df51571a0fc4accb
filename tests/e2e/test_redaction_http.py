"""Acceptance: a ruleset's ``redact:`` fields never reach the decision log, against a real ``opsgate serve``.

A test ruleset ``notify`` (beside ops, in a copy of rules/ and rego/) redacts ``customer.email`` and
sends the address in an action.  After real decisions: the SQLite file and its -wal and -shm hold no
byte of either address (and a PostgreSQL log's table text holds neither), the callers' answers do,
``opsgate log verify`` passes, one address has one keyed hash and another a different one, a
signed proof of a redacted decision checks offline and carries only the hash, the reviewer page says
"redacted", replay names the field, and ``opsgate check`` refuses a bad path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.adapters.attest.signing import generate
from tests.conftest import ROOT, opsgate, sql, tables, verified
from tests.e2e.server import JSON, Server

StartServer = Callable[..., Server]

KEY = "0123456789abcdef0123456789abcdef-test-redaction-key"
KEY_ID = "test-key-1"
ALICE = "alice.redaction-test@example.org"
BOB = "bob.redaction-test@example.org"

NOTIFY = """\
name: notify
agent: notify-agent
description: Whether to send a customer an e-mail.
owner: test
facts:
  kind: {type: str, enum: [receipt, alert]}
  customer:
    type: object
    fields:
      email: {type: str, min_length: 3}
      tier: {type: str, enum: [gold, basic]}
redact: [customer.email]
escalation:
  decision: NOTIFY.ESCALATE
  action: {type: OPEN_TICKET}
rules:
  - id: send-gold
    title: Gold customers are told
    when: customer.tier == "gold"
    then:
      decision: NOTIFY.SEND
      confidence: 0.9
      autonomy: L3
      actions:
        - type: SEND_EMAIL
          to: customer.email
          subject: '"Your " + kind + " for " + customer.email'
  - id: hold-basic
    title: Basic customers wait
    when: customer.tier == "basic"
    then:
      decision: NOTIFY.HOLD
      confidence: 0.8
      autonomy: L3
"""


def expected_hash(email: str) -> str:
    """HMAC-SHA256 under KEY of the value's canonical JSON, worked out here, not by opsgate."""
    return hmac.new(KEY.encode(), f'"{email}"'.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def notify_dirs(ops_only_dirs: tuple[Path, Path]) -> tuple[Path, Path]:
    rules, rego = ops_only_dirs
    (rules / "notify.yaml").write_text(NOTIFY)
    return rules, rego


def redaction_env(tmp_path: Path) -> dict[str, str]:
    key_file = tmp_path / "redaction.key"
    key_file.write_text(KEY + "\n")
    return {"OPSGATE_REDACTION_KEY_FILE": str(key_file), "OPSGATE_REDACTION_KEY_ID": KEY_ID}


def notify(server: Server, email: str, tier: str = "gold") -> dict[str, Any]:
    response = server.decide({"kind": "receipt", "customer": {"email": email, "tier": tier}}, "/decide/notify")
    assert response.status_code == 200, response.text
    assert email in response.text  # the caller's answer keeps the value
    result: dict[str, Any] = response.json()["result"]
    return result


def decide_four(server: Server) -> list[dict[str, Any]]:
    decided = [notify(server, ALICE), notify(server, ALICE, "basic"), notify(server, BOB), notify(server, ALICE)]
    assert decided[0]["execution"]["actions"][0]["to"] == ALICE
    assert decided[0]["context"]["customer"]["email"] == ALICE
    return decided


def stored_email(server: Server, decision_id: str) -> dict[str, Any]:
    response = server.client.get(f"/decisions/{decision_id}")
    assert response.status_code == 200, response.text
    assert ALICE not in response.text and BOB not in response.text
    email: dict[str, Any] = response.json()["record"]["facts"]["customer"]["email"]
    return email


def assert_hashes_correlate(server: Server, decided: list[dict[str, Any]]) -> None:
    alice, alice_basic, bob, alice_again = (stored_email(server, d["decision_id"]) for d in decided)
    assert alice == {"redacted": "hmac-sha256", "key_id": KEY_ID, "hash": expected_hash(ALICE)}
    assert alice_basic == alice_again == alice
    assert bob == {"redacted": "hmac-sha256", "key_id": KEY_ID, "hash": expected_hash(BOB)}
    assert bob["hash"] != alice["hash"]


def test_sqlite_files_hold_no_byte_of_the_address_and_the_log_verifies(
    tmp_path: Path, notify_dirs: tuple[Path, Path], start_server: StartServer, opa_bin: str
) -> None:
    db = tmp_path / "decisions.db"
    server = start_server(*notify_dirs, str(db), **redaction_env(tmp_path))
    decided = decide_four(server)
    assert_hashes_correlate(server, decided)
    carol = {"kind": "alert", "customer": {"email": "carol.redaction-test@example.org", "tier": "basic"}}
    batch = server.client.post("/decide/notify/batch", json={"items": [carol, carol]})
    assert batch.status_code == 200 and "carol.redaction-test@example.org" in batch.text
    record = server.client.get(f"/decisions/{decided[0]['decision_id']}").json()["record"]
    action = record["execution"]["actions"][0]
    marker = f"[redacted:{KEY_ID}:{expected_hash(ALICE)}]"
    assert (action["to"], action["subject"]) == (marker, f"Your receipt for {marker}")
    files = [path for path in tmp_path.iterdir() if path.name.startswith("decisions.db")]
    assert {path.name for path in files} >= {"decisions.db", "decisions.db-wal"}
    for path in files:  # while serving: the WAL holds the newest pages
        content = path.read_bytes()
        assert ALICE.encode() not in content and BOB.encode() not in content, path.name
        assert b"alice.redaction-test" not in content and b"bob.redaction-test" not in content, path.name
    server.stop()
    for path in tmp_path.iterdir():
        if path.name.startswith("decisions.db"):
            assert b"redaction-test@example.org" not in path.read_bytes(), path.name
    assert "chain intact" in verified(str(db), opa_bin)


def test_postgresql_table_holds_no_plaintext(
    tmp_path: Path, notify_dirs: tuple[Path, Path], start_server: StartServer, pg_url: str, opa_bin: str
) -> None:
    server = start_server(*notify_dirs, pg_url, **redaction_env(tmp_path))
    decided = decide_four(server)
    assert_hashes_correlate(server, decided)
    texts = [str(row[0]) for row in sql(pg_url, "SELECT opsgate_body(body) FROM log_entries")]
    assert len(texts) == 4
    assert sum(expected_hash(ALICE) in text for text in texts) == 3
    assert sum(expected_hash(BOB) in text for text in texts) == 1
    for table in tables(pg_url):  # every row of every table, as text
        dumped = " ".join(str(row[0]) for row in sql(pg_url, f"SELECT t::text FROM {table} t"))
        assert "redaction-test@example.org" not in dumped, table
    assert "chain intact" in verified(pg_url, opa_bin)


def test_a_redacted_decision_is_proved_and_the_proof_holds_its_keyed_hash_only(
    tmp_path: Path, notify_dirs: tuple[Path, Path], start_server: StartServer, opa_bin: str
) -> None:
    public = generate(tmp_path / "signing.key")
    db, checkpoints = str(tmp_path / "decisions.db"), tmp_path / "checkpoints"
    server = start_server(*notify_dirs, db, OPSGATE_SIGNING_KEY_FILE=str(tmp_path / "signing.key"),
                          **redaction_env(tmp_path))  # fmt: skip
    decision_id = notify(server, ALICE)["decision_id"]
    server.stop()  # its final checkpoint covers the decision
    made = opsgate("log", "prove", decision_id, "--db", db, "--checkpoints", str(checkpoints))
    assert made.returncode == 0, made.stderr
    assert ALICE not in made.stdout and expected_hash(ALICE) in json.loads(made.stdout)["record"]
    (tmp_path / "proof.json").write_text(made.stdout)
    checked = opsgate("log", "check-proof", str(tmp_path / "proof.json"), "--public-key", str(public))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: record 1 of writer ")
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-proof.py"), str(tmp_path / "proof.json"),
                             str(public)], capture_output=True, text=True, check=False)  # fmt: skip
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith(f"ok: decision {decision_id} is record 1 of writer ")
    result = opsgate("log", "verify", "--db", db, "--checkpoints", str(checkpoints), "--public-key", str(public),
                     opa_bin=opa_bin)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 records verified, chain intact" in result.stdout


def test_reviewer_page_shows_the_field_as_redacted(
    tmp_path: Path, notify_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    server = start_server(*notify_dirs, **redaction_env(tmp_path))
    decision_id = notify(server, ALICE)["decision_id"]
    page = server.client.get(f"/ui/decisions/{decision_id}")
    assert page.status_code == 200, page.text
    assert ALICE not in page.text
    assert 'Redacted: the log holds a keyed hash (HMAC-SHA256), not the value, of\n<code class="redacted">' \
        "customer.email</code>." in page.text  # fmt: skip
    assert expected_hash(ALICE) in page.text
    explained = server.client.get(f"/decisions/{decision_id}/explain").json()
    assert 'customer.tier "gold"' in explained["text"] and ALICE not in explained["text"]
    replayed = server.client.post(f"/decisions/{decision_id}/replay", headers=JSON)
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["error"]["message"] == (
        f"decision {decision_id!r} cannot be replayed: its rules read the redacted field customer.email"
    )


def test_replay_names_the_redacted_field_its_rules_read(
    tmp_path: Path, notify_dirs: tuple[Path, Path], start_server: StartServer, opa_bin: str
) -> None:
    db = str(tmp_path / "decisions.db")
    server = start_server(*notify_dirs, db, **redaction_env(tmp_path))
    decided = [notify(server, ALICE), notify(server, BOB, "basic")]
    server.stop()
    rules, rego = notify_dirs
    args = ("--db", db, "--candidate-rules", str(rules), "--candidate-rego", str(rego), "--ruleset", "notify")
    result = opsgate("replay", *args, "--format", "json", opa_bin=opa_bin)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["replayed"], report["not_replayable"]) == (0, 2)
    [skipped] = report["not_replayable_reasons"]
    assert skipped["reason"] == "its rules read the redacted field customer.email"
    assert sorted(skipped["samples"]) == sorted(d["decision_id"] for d in decided)
    capture = opsgate("test", "--from-decision", decided[0]["decision_id"], "--db", db, "--rules-dir", str(rules))
    assert capture.returncode != 0
    assert "has redacted facts (customer.email)" in capture.stderr


def test_serve_refuses_to_start_without_a_key(tmp_path: Path, notify_dirs: tuple[Path, Path], opa_bin: str) -> None:
    rules, rego = notify_dirs
    result = opsgate(
        "serve", "--port", "0", "--rules-dir", str(rules), "--rego-dir", str(rego), "--db", str(tmp_path / "d.db"),
        opa_bin=opa_bin,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ruleset notify declares redact: fields but no key is set" in result.stderr


def test_a_reload_that_brings_a_redacting_ruleset_without_a_key_is_refused(
    ops_only_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = ops_only_dirs
    server = start_server(rules, rego)
    before = server.client.get("/ready").json()["version"]
    (rules / "notify.yaml").write_text(NOTIFY)
    refused = server.client.post("/admin/reload", headers=JSON)
    assert refused.status_code == 500, refused.text
    error = refused.json()["error"]
    assert error["code"] == "redaction_key_missing"
    assert "ruleset notify declares redact: fields but no key is set" in error["message"]
    assert server.client.get("/ready").json()["version"] == before
    assert (
        server.decide({"kind": "receipt", "customer": {"email": ALICE, "tier": "gold"}}, "/decide/notify").status_code
        == 404
    )


def test_check_refuses_a_redact_path_not_in_the_facts_schema(notify_dirs: tuple[Path, Path], opa_bin: str) -> None:
    rules, rego = notify_dirs
    (rules / "notify.yaml").write_text(NOTIFY.replace("redact: [customer.email]", "redact: [customer.mail]"))
    result = opsgate("check", "--rules-dir", str(rules), "--rego-dir", str(rego), opa_bin=opa_bin)
    assert result.returncode == 1
    assert result.stderr == (
        "rules/notify.yaml:12:10: error: redact[0]: redact path 'customer.mail' is not in the facts schema\n"
        "1 error(s)\n"
    )

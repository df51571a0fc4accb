"""How the log stores bodies: decisions compressed against another decision of their ruleset version
on SQLite (text on PostgreSQL), every reader handed the canonical text, and a damaged compressed
body or dictionary named by ``opsgate log verify`` and the standalone script."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.adapters.store import StoreLog, open_log, verify_log
from tests.conftest import ROOT, opsgate, sql
from tests.integration.test_decision_log_store import append_all, decision


def canonical_text(n: int, seq: int, **changes: Any) -> str:
    record = {**decision(n, **changes), "writer": "replica-a", "seq": seq}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


V2 = {"name": "ops", "version": "v2", "file": "rules/ops.yaml"}


def test_decisions_after_the_first_of_a_ruleset_version_are_stored_compressed_and_read_as_text(
    log_db: str, log: StoreLog
) -> None:
    append_all(log, [decision(n) for n in range(4)])
    append_all(log, [decision(4, ruleset=V2), decision(5, ruleset=V2)])
    stored = sql(log_db, "SELECT seq, body FROM log_entries ORDER BY seq")
    texts = {1: canonical_text(0, 1), 5: canonical_text(4, 5, ruleset=V2)}
    if log_db.startswith("postgresql://"):  # PostgreSQL compresses large values itself: text throughout
        assert [type(body) for _, body in stored] == [str] * 6
    else:  # the first decision of each version is its dictionary, stored as text; the others refer to it
        assert [(seq, type(body)) for seq, body in stored] == [
            (1, str), (2, bytes), (3, bytes), (4, bytes), (5, str), (6, bytes)
        ]  # fmt: skip
        assert [body for seq, body in stored if seq in texts] == [texts[1], texts[5]]
        compressed = [bytes(body) for _, body in stored if isinstance(body, bytes)]
        assert all(len(body) < 120 < len(texts[1]) // 4 for body in compressed)
        assert [body[:33] for body in compressed] == [b"\x01" + hashlib.sha256(texts[1].encode()).digest()] * 3 + [
            b"\x01" + hashlib.sha256(texts[5].encode()).digest()
        ]
        held = sql(log_db, "SELECT sha256 FROM blobs ORDER BY sha256")
        assert sorted(hashlib.sha256(texts[s].encode()).hexdigest() for s in texts) == [d for (d,) in held]
    got = asyncio.run(log.records.get("000000000002"))
    assert [(r.seq, r.body) for r in got] == [(3, canonical_text(2, 3))]
    assert sql(log_db, "SELECT opsgate_body(body) FROM log_entries WHERE seq = 6") == [
        (canonical_text(5, 6, ruleset=V2),)
    ]
    assert str(verify_log(log_db)).splitlines()[0] == "6 records verified, chain intact"


def test_a_new_writer_process_reads_an_earlier_ones_compressed_bodies_and_picks_its_own_dictionary(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "decisions.db")
    first = open_log(db, "replica-a")
    try:
        append_all(first, [decision(n) for n in range(3)])
    finally:
        first.close()
    again = open_log(db, "replica-a")
    try:
        append_all(again, [decision(n) for n in range(3, 5)])
        bodies = [r.body for n in range(5) for r in asyncio.run(again.records.get(f"0000000{n:05d}"))]
    finally:
        again.close()
    assert bodies == [canonical_text(n, n + 1) for n in range(5)]
    types = sql(db, "SELECT seq, typeof(body) FROM log_entries ORDER BY seq")
    assert types == [(1, "text"), (2, "blob"), (3, "blob"), (4, "text"), (5, "blob")]
    assert str(verify_log(db)).splitlines()[0] == "5 records verified, chain intact"


UNREAD = "its stored body cannot be read ("
FIRST = hashlib.sha256(canonical_text(0, 1).encode()).hexdigest()[:12]  # the dictionary of seq 2 on
DAMAGE = {
    "a byte of a compressed body is flipped": (
        "UPDATE log_entries SET body = CAST(substr(body, 1, 40) || x'ff' || substr(body, 42) AS BLOB) WHERE seq = 3",
        3,
        UNREAD,
    ),
    "a compressed body is cut short": ("UPDATE log_entries SET body = substr(body, 1, 40) WHERE seq = 3", 3, UNREAD),
    "a compressed body is edited as text": (
        "UPDATE log_entries SET body = replace(opsgate_body(body), '10.0.0.1', '10.0.0.9') WHERE seq = 4",
        4,
        "hash ",
    ),
    "its dictionary is altered": (
        "UPDATE blobs SET content = CAST(replace(CAST(content AS TEXT), 'café', 'cafe') AS BLOB)",
        2,
        f"{UNREAD}dictionary {FIRST}… in blobs does not match its sha256 (it was altered)): the record was altered",
    ),
    "its dictionary is deleted": ("DELETE FROM blobs", 2, f"{UNREAD}dictionary {FIRST}… is missing from blobs)"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_to_a_compressed_body_or_its_dictionary_is_named_by_log_verify_and_the_script(
    tmp_path: Path, opa_bin: str, damage: tuple[str, int, str]
) -> None:
    statement, seq, problem = damage
    db = str(tmp_path / "decisions.db")
    store = open_log(db, "replica-a")
    try:
        append_all(store, [decision(n) for n in range(5)])
    finally:
        store.close()
    sql(db, statement)
    result = opsgate("log", "verify", "--db", db, opa_bin=opa_bin)
    assert result.returncode == 1
    assert result.stderr.startswith(f"chain broken after {seq - 1} good records")
    assert f"record #{seq} (writer replica-a, seq {seq}, decision 0000000{seq - 1:05d}): {problem}" in result.stderr
    assert "the record was altered" in result.stderr
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-chain.py"), db],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert (script.returncode, script.stderr) == (1, f"record #{seq} (writer replica-a, seq {seq}): broken chain\n")


def test_the_dashboards_latency_percentiles_read_compressed_bodies(log: StoreLog) -> None:
    append_all(log, [decision(n, latency_ms={"total": float(10 * (n + 1))}) for n in range(10)])
    stats = asyncio.run(
        log.statistics.window_stats("2026-11-21T00:00:00.000000+00:00", "2026-11-22T00:00:00.000000+00:00")
    )
    assert (stats.decisions, stats.latency_p50_ms, stats.latency_p90_ms, stats.latency_p99_ms) == (
        10,
        50.0,
        90.0,
        100.0,
    )

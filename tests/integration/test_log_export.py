"""``opsgate log export`` and the export cursors, on SQLite and PostgreSQL: the messages the sinks
get, as JSON lines, verified from the file alone; cursors per sink and writer that never go back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from service.adapters.store import StoreLog, open_log
from service.domain.export import decode, verify_stream
from service.domain.record import Record
from service.settings import Settings
from tests.conftest import OPA_TIMEOUT_MS, ROOT, decide_in_process, opsgate, sql
from tests.e2e.test_ops_decisions import ops_facts
from tests.records import typed

CHECKPOINT = "20261204T000000Z-replica-1-6.json"


def decide(db: str, opa_bin: str, rules: tuple[Path, Path], writer: str, count: int) -> None:
    settings = Settings(db=db, writer_id=writer, rules_dir=rules[0], rego_dir=rules[1], opa_bin=opa_bin,
                        opa_timeout_ms=OPA_TIMEOUT_MS)  # fmt: skip
    decide_in_process(settings, [(ops_facts(failures=n % 2), f"caller-{n}") for n in range(count)])


def export(db: str, checkpoints: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return opsgate("log", "export", "--db", db, *flags, env={**os.environ, "OPSGATE_CHECKPOINTS_DIR": str(checkpoints)})


def test_log_export_writes_every_chain_and_checkpoint_and_since_starts_each_chain_whole(
    log_db: str, tmp_path: Path, opa_bin: str, ops_only_dirs: tuple[Path, Path]
) -> None:
    decide(log_db, opa_bin, ops_only_dirs, "replica-1", 6)
    decide(log_db, opa_bin, ops_only_dirs, "replica-2", 4)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / CHECKPOINT).write_text('{"tree_size": 6}')
    out = tmp_path / "export.jsonl"

    result = export(log_db, checkpoints, "--format", "jsonl", "--out", str(out))
    assert (result.returncode, result.stderr) == (0, "exported 10 records and 1 checkpoints\n")
    lines = out.read_text().splitlines()
    messages = [decode(line) for line in lines]
    assert [(d["kind"], d.get("writer"), d.get("seq")) for d in map(json.loads, lines)] == [
        *[("record", "replica-1", seq) for seq in range(1, 7)],
        *[("record", "replica-2", seq) for seq in range(1, 5)],
        ("checkpoint", None, None),
    ]
    stored = sql(log_db, "SELECT opsgate_body(body), hash FROM log_entries WHERE writer = 'replica-1' AND seq = 2")
    assert (json.loads(lines[1])["body"], json.loads(lines[1])["hash"]) == stored[0]  # the body as stored and hashed
    report = verify_stream(messages)
    assert (report.ok, report.records, report.first_seq, report.checkpoints) == (
        True, {"replica-1": 6, "replica-2": 4}, {"replica-1": 1, "replica-2": 1}, 1,
    )  # fmt: skip
    standalone = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-export.py"), str(out)],
                                capture_output=True, text=True, check=False)  # fmt: skip
    assert standalone.stdout == (
        "writer replica-1: 6 records verified up to seq 6\nwriter replica-2: 4 records verified up to seq 4\n"
        "1 checkpoint(s)\n"
    )

    [(fourth,)] = sql(log_db, "SELECT created_at FROM log_entries WHERE writer = 'replica-1' AND seq = 4")
    since = export(log_db, checkpoints, "--since", str(fourth))
    later = [decode(line) for line in since.stdout.splitlines()]
    report = verify_stream(later)
    assert (report.ok, report.records, report.first_seq) == (
        True, {"replica-1": 3, "replica-2": 4}, {"replica-1": 4, "replica-2": 1},
    )  # fmt: skip


def test_an_altered_exported_record_is_named_by_both_verifiers(log_db: str, tmp_path: Path, opa_bin: str,
                                                              ops_only_dirs: tuple[Path, Path]) -> None:  # fmt: skip
    decide(log_db, opa_bin, ops_only_dirs, "replica-1", 3)
    out = tmp_path / "export.jsonl"
    assert export(log_db, tmp_path / "none", "--out", str(out)).returncode == 0
    lines = out.read_text().splitlines()
    second = json.loads(lines[1])
    second["body"] = second["body"].replace('"caller":"caller-1"', '"caller":"someone-else"')
    lines[1] = json.dumps(second)
    out.write_text("\n".join(lines) + "\n")
    report = verify_stream([decode(line) for line in lines])
    assert (report.ok, report.error) == (False, "writer replica-1 seq 2: its hash does not match its body (altered)")
    standalone = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify-export.py"), str(out)],
                                capture_output=True, text=True, check=False)  # fmt: skip
    assert (standalone.returncode, standalone.stderr) == (
        1,
        "line 2 (writer replica-1, seq 2): the hash does not match the body\n",
    )


def test_log_export_refuses_a_bad_time_and_a_missing_log(tmp_path: Path) -> None:
    bad = opsgate("log", "export", "--db", str(tmp_path / "x.db"), "--since", "yesterday")
    assert bad.returncode == 2 and "--since: expected an RFC 3339 time, got 'yesterday'" in bad.stderr
    missing = opsgate("log", "export", "--db", str(tmp_path / "none.db"))
    assert (missing.returncode, missing.stderr) == (2, f"opsgate: no decision log at {tmp_path / 'none.db'}\n")
    assert not (tmp_path / "none.db").exists()


def test_cursors_are_kept_per_sink_and_writer_and_never_go_back(log_db: str) -> None:
    first, second = open_log(log_db, "replica-a"), open_log(log_db, "replica-b")
    try:
        asyncio.run(_move_cursors(first, second))
    finally:
        first.close()
        second.close()
    assert sorted(sql(log_db, "SELECT sink, writer, seq FROM export_cursors")) == [
        ("hook", "replica-a", 7), ("hook", "replica-b", 2), ("stream", "replica-a", 3),
    ]  # fmt: skip


async def _move_cursors(first: StoreLog, second: StoreLog) -> None:
    assert (await first.exports.head(), await first.exports.after(0, 10)) == (0, [])
    await first.records.append_many([_outcome(n) for n in range(4)])
    await second.records.append_many([_outcome(9)])
    assert (await first.exports.head(), await second.exports.head()) == (4, 1)
    assert [(r.writer, r.seq) for r in await first.exports.after(1, 2)] == [("replica-a", 2), ("replica-a", 3)]
    assert await first.exports.position("hook") == 0
    await first.exports.advance("hook", 7)
    await first.exports.advance("hook", 5)  # a late, older acknowledgement does not move it back
    await first.exports.advance("stream", 3)
    await second.exports.advance("hook", 2)
    assert (await first.exports.position("hook"), await second.exports.position("hook")) == (7, 2)
    await first.exports.checkpoint_exported("hook", CHECKPOINT)
    await second.exports.checkpoint_exported("hook", CHECKPOINT)  # shipped twice: kept once
    assert await first.exports.exported_checkpoints("hook") == {CHECKPOINT}
    assert await first.exports.exported_checkpoints("stream") == set()


def _outcome(n: int) -> Record:
    return typed({"kind": "outcome", "decision_id": f"d-{n}", "created_at": "2026-12-04T10:00:00.000000+00:00",
                  "caller": "exec", "outcome": {"status": "SUCCEEDED", "detail": "done"}})  # fmt: skip

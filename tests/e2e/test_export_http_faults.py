"""The HTTP export sink across a network cut: a receiver of the test's own (a real HTTP server on
loopback that checks each POST's HMAC signature and keeps each record once, by its identity) sits
behind a forwarder that goes silent for a few seconds while decisions keep coming.  Afterwards the
receiver holds the log's records exactly, in order, a resend only ever identical to the first
delivery, the chain verifies from what it received alone, the lag is back to 0 and every decision
was answered."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.domain.export import RecordMessage, decode, verify_stream
from tests.conftest import ROOT, sql
from tests.e2e.hooks import HookReceiver
from tests.e2e.server import Server
from tests.e2e.test_export_nats import export_samples, wait_for
from tests.e2e.test_ops_decisions import ops_facts
from tests.forwarder import Forwarder

SECRET = "hook-secret-for-the-cut"
WRITER = "http-cut"
# 5,000 decisions in batches of 100: about 15 s on a loaded 2-core machine (load 8), cut included,
# well under a minute; enough that decisions go on before, during and after a cut of at least 3 s.
TOTAL, PER_BATCH = 5_000, 100
BATCH = 100  # records the exporter reads and sends per round (the export config's `batch`)


class Receiver(HookReceiver):
    """Keeps each message once by its Idempotency-Key, in order of first arrival; a message that
    comes again must be byte for byte the first one; a bad signature is refused with 401."""

    def __init__(self) -> None:
        self.first: dict[str, bytes] = {}  # Idempotency-Key -> body, in order of first arrival
        self.repeats: list[str] = []  # keys delivered again (at least once), identical
        self.conflicts: list[str] = []  # keys delivered again with another body: must stay empty
        self.bad_signatures = 0
        self.lock = threading.Lock()
        super().__init__(keep_alive=True)

    def answer(self, body: bytes, headers: Any) -> int:
        return self.take(body, headers["X-Opsgate-Signature"], headers["Idempotency-Key"])

    def take(self, body: bytes, signature: str | None, key: str) -> int:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(expected, signature or ""):
                self.bad_signatures += 1
                return 401
            if key not in self.first:
                self.first[key] = body
            elif self.first[key] == body:
                self.repeats.append(key)
            else:
                self.conflicts.append(key)
            return 204

    def highest_seq(self) -> int:
        with self.lock:
            return len(self.first)

    def messages(self) -> list[bytes]:
        with self.lock:
            return list(self.first.values())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def hook_state(server: Server) -> dict[str, Any]:
    response = server.client.get("/ready")
    assert response.status_code == 200  # the lag never makes the service unready
    return dict(response.json()["export"]["hook"])


def test_every_record_reaches_a_receiver_cut_off_mid_run_exactly_once_per_identity(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str, receiver: Receiver
) -> None:
    forwarder = Forwarder("127.0.0.1", receiver.port)
    config = tmp_path / "export.yaml"
    config.write_text(
        f"sinks:\n  - kind: http\n    name: hook\n    url: http://127.0.0.1:{forwarder.port}/opsgate\n"
        "    secret_env: HOOK_SECRET\n    attempts: 2\n    backoff_s: 0.05\n    max_backoff_s: 0.2\n"
        f"    timeout_s: 2\nbatch: {BATCH}\npoll_s: 0.1\nretry_max_s: 0.5\n"
    )
    server = Server(
        tmp_path, *ops_only_dirs, opa_bin, OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER,
        OPSGATE_MAX_IN_FLIGHT="1000", OPSGATE_REQUEST_TIMEOUT_S="30", HOOK_SECRET=SECRET,
    )  # fmt: skip
    statuses: list[int] = []
    try:
        decider = threading.Thread(target=decide_all, args=(server, statuses), daemon=True)
        decider.start()
        third = TOTAL // PER_BATCH // 3
        wait_for(lambda: len(statuses) >= third and receiver.highest_seq() > 0, 60, "a third decided, some received")
        forwarder.blackhole()
        cut_at, answered_at_cut = time.monotonic(), len(statuses)
        down = wait_for(lambda: (s := hook_state(server)) and not s["ok"] and s["lag"] > 0 and s, 15, "sink down")
        assert down["error"].startswith(f"POST http://127.0.0.1:{forwarder.port}/opsgate: ")
        assert export_samples(server, "hook")["opsgate_export_up"] == 0
        held = receiver.highest_seq()  # nothing arrives while the sink is down
        # the receiver stays cut off for at least 3 s and while 5 more batches are decided (or all of them)
        more = min(answered_at_cut + 5, TOTAL // PER_BATCH)
        wait_for(lambda: time.monotonic() - cut_at >= 3 and len(statuses) >= more, 60, "the cut")
        assert receiver.highest_seq() == held
        forwarder.restore()
        decider.join(120)
        assert not decider.is_alive()
        assert statuses == [200] * (TOTAL // PER_BATCH)  # every decision answered, the sink down or not
        wait_for(lambda: (s := hook_state(server))["ok"] and s["lag"] == 0, 60, "the receiver caught up")
        assert export_samples(server, "hook") == {"opsgate_export_lag": 0, "opsgate_export_up": 1}
    finally:
        server.stop()
        forwarder.close()

    log = sql(server.db, "SELECT seq, opsgate_body(body), prev_hash, hash FROM log_entries WHERE writer = ? "
              "ORDER BY seq", (WRITER,))  # fmt: skip
    received = [decode(body) for body in receiver.messages()]
    assert all(isinstance(m, RecordMessage) for m in received)  # no signing key: no checkpoint files
    assert [(m.writer, m.seq, m.body, m.prev_hash, m.hash) for m in received if isinstance(m, RecordMessage)] == [
        (WRITER, *row) for row in log
    ]  # every record of the log, once, in order, exactly as stored
    assert [row[0] for row in log] == list(range(1, TOTAL + 1))
    assert receiver.bad_signatures == 0 and receiver.conflicts == []
    # a resend is only of what was in flight when the cut came: the failed round's batch
    assert {int(key.rsplit(":", 1)[1]) for key in receiver.repeats} <= set(range(held - BATCH + 1, held + 2))
    report = verify_stream(received)
    assert (report.ok, report.error, report.records, report.first_seq) == (True, None, {WRITER: TOTAL}, {WRITER: 1})
    assert_verified_by_the_standalone_script(tmp_path, receiver.messages())


def decide_all(server: Server, statuses: list[int]) -> None:
    items = [ops_facts(failures=i % 2) for i in range(PER_BATCH)]
    for _ in range(TOTAL // PER_BATCH):
        response = server.client.post("/decide/batch", json={"items": items}, timeout=30)
        statuses.append(response.status_code if response.json().get("decided") == PER_BATCH else -1)


def assert_verified_by_the_standalone_script(tmp_path: Path, bodies: list[bytes]) -> None:
    """scripts/verify-export.py (no opsgate import) follows the chain through what was received."""
    received = tmp_path / "received.jsonl"
    received.write_bytes(b"".join(body + b"\n" for body in bodies))
    script = ROOT / "scripts" / "verify-export.py"
    result = subprocess.run([sys.executable, str(script), str(received)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"writer {WRITER}: {TOTAL} records verified up to seq {TOTAL}\n0 checkpoint(s)\n"

"""Export from a PostgreSQL decision log (a schema of the test's own) to the real NATS JetStream
server (a stream of the test's own) through a forwarder the test cuts while decisions go on (silent,
then reset: what it held is lost): the stream ends with every record once, exactly as stored, in
order, its chain verified from the stream alone, and with this writer's signed checkpoints, each
root recomputed from the streamed records."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from service.adapters.attest.signing import generate
from service.domain.export import CheckpointMessage, RecordMessage, decode, verify_stream
from tests.conftest import sql
from tests.e2e.server import Server
from tests.e2e.test_export_nats import _read_stream, export_samples, wait_for
from tests.e2e.test_ops_decisions import ops_facts
from tests.forwarder import Forwarder

WRITER = "pg-export-test"
PER_BATCH = 50
BEFORE, DURING, AFTER = 3, 3, 2  # batches decided before, during and after the cut
TOTAL = (BEFORE + DURING + AFTER) * PER_BATCH


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH over leaf hashes, written out here (not opsgate's)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def nats_state(server: Server) -> dict[str, Any]:
    response = server.client.get("/ready")
    assert response.status_code == 200
    return dict(response.json()["export"]["jetstream"])


def decide(server: Server, batches: int) -> None:
    items = [ops_facts(failures=i % 2) for i in range(PER_BATCH)]
    for _ in range(batches):
        response = server.client.post("/decide/batch", json={"items": items}, timeout=30)
        assert (response.status_code, response.json()["decided"]) == (200, PER_BATCH)


def test_a_postgresql_log_reaches_the_stream_once_in_order_with_its_checkpoints_across_a_cut(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str, pg_url: str, stream: tuple[str, str]
) -> None:
    name, subject = stream
    forwarder = Forwarder("127.0.0.1", 4222)
    checkpoints = tmp_path / "checkpoints"
    generate(tmp_path / "signing.key")
    config = tmp_path / "export.yaml"
    config.write_text(
        f"sinks:\n  - kind: nats\n    name: jetstream\n    url: nats://127.0.0.1:{forwarder.port}\n"
        f"    stream: {name}\n    subject: {subject}\n    ack_timeout_s: 1\n"
        "batch: 100\npoll_s: 0.1\nretry_max_s: 0.5\n"
    )
    server = Server(
        tmp_path, *ops_only_dirs, opa_bin, pg_url, OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER,
        OPSGATE_SIGNING_KEY_FILE=str(tmp_path / "signing.key"), OPSGATE_CHECKPOINTS_DIR=str(checkpoints),
        OPSGATE_CHECKPOINT_INTERVAL_S="1",
    )  # fmt: skip
    last = f"-{WRITER}-{TOTAL}.json"
    try:
        decide(server, BEFORE)
        wait_for(lambda: (s := nats_state(server))["lag"] == 0 and s["ok"], 30, "the first records exported")
        forwarder.blackhole()
        decide(server, DURING)  # answered while the stream cannot be reached
        down = wait_for(lambda: (s := nats_state(server)) and not s["ok"] and s["lag"] > 0 and s, 15, "sink down")
        assert down["error"].startswith("NATS ") and down["exported_seq"] >= BEFORE * PER_BATCH
        assert export_samples(server, "jetstream")["opsgate_export_up"] == 0
        forwarder.sever()  # what the forwarder held of the failed batches is lost: only a resend brings it
        forwarder.restore()
        decide(server, AFTER)

        def caught_up() -> bool:
            state = nats_state(server)
            files = [p for p in checkpoints.iterdir() if p.name.endswith(".json")]
            done = any(p.name.endswith(last) for p in files) and state["checkpoints"] == len(files)
            return bool(done and state["ok"] and state["lag"] == 0)

        wait_for(caught_up, 60, "every record and the checkpoint of all of them exported")
        assert export_samples(server, "jetstream") == {"opsgate_export_lag": 0, "opsgate_export_up": 1}
    finally:
        server.stop()
        forwarder.close()

    messages = [decode(data) for data in asyncio.run(_read_stream(name, subject))]
    records = [m for m in messages if isinstance(m, RecordMessage)]
    log = sql(pg_url, "SELECT seq, opsgate_body(body), prev_hash, hash FROM log_entries WHERE writer = ? "
              "ORDER BY seq", (WRITER,))  # fmt: skip
    assert [row[0] for row in log] == list(range(1, TOTAL + 1))
    assert [(m.writer, m.seq, m.body, m.prev_hash, m.hash) for m in records] == [(WRITER, *row) for row in log]
    report = verify_stream(messages)
    assert (report.ok, report.error, report.records, report.first_seq, report.duplicates) == (
        True, None, {WRITER: TOTAL}, {WRITER: 1}, 0,
    )  # fmt: skip
    assert_checkpoints_match(messages, records, checkpoints, last)


def assert_checkpoints_match(messages: list[Any], records: list[RecordMessage], directory: Path, last: str) -> None:
    """Each streamed checkpoint is its file, once, and signs the root of the streamed records it covers."""
    shipped = [m for m in messages if isinstance(m, CheckpointMessage)]
    names = [m.name for m in shipped]
    assert len(names) == len(set(names)) and any(n.endswith(f"-{WRITER}-0.json") for n in names)
    assert any(n.endswith(last) for n in names)
    leaves = [hashlib.sha256(b"\x00" + bytes.fromhex(m.hash)).digest() for m in records]
    for message in shipped:
        assert message.body == (directory / message.name).read_text()
        checkpoint = json.loads(message.body)
        assert (checkpoint["writer"], message.name.endswith(f"-{checkpoint['tree_size']}.json")) == (WRITER, True)
        assert checkpoint["root_hash"] == mth(leaves[: checkpoint["tree_size"]]).hex(), message.name
    seen = 0
    for message in messages:  # a checkpoint never comes before the records it covers
        if isinstance(message, RecordMessage):
            seen += 1
        else:
            assert json.loads(message.body)["tree_size"] <= seen, message.name

"""Export to the real NATS JetStream server (127.0.0.1:4222) through a forwarder the test cuts for
10 s (silent, then reset: what it held is lost) while 10,000 decisions are made: the stream ends
with every record once, in order, its chain verified from the stream alone, and every decision was
answered meanwhile."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client.parser import text_string_to_metric_families

from service.domain.export import RecordMessage, decode, verify_stream
from tests.e2e.conftest import NATS_URL
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts
from tests.forwarder import Forwarder

TOTAL, PER_BATCH = 10_000, 250
WRITER = "export-test"


def wait_for(condition: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


async def _read_stream(stream: str, subject: str) -> list[bytes]:
    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        expected = (await js.stream_info(stream)).state.messages
        no_acks = ConsumerConfig(ack_policy=AckPolicy.NONE)  # else a fetch stops at max_ack_pending
        subscription = await js.pull_subscribe(f"{subject}.>", stream=stream, config=no_acks)
        data: list[bytes] = []
        while len(data) < expected:
            data += [message.data for message in await subscription.fetch(1000, timeout=5)]
        return data
    finally:
        await client.close()


def export_samples(server: Server, sink: str) -> dict[str, float]:
    """The export gauges of ``sink`` on GET /metrics."""
    text = server.client.get("/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("opsgate_export_") and sample.labels == {"sink": sink}
    }


def ready_export(server: Server) -> dict[str, Any]:
    response = server.client.get("/ready")
    assert response.status_code == 200  # lag never makes the service unready
    return dict(response.json()["export"]["jetstream"])


def test_ten_thousand_decisions_reach_the_stream_once_in_order_across_a_10s_cut(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str, stream: tuple[str, str]
) -> None:
    name, subject = stream
    forwarder = Forwarder("127.0.0.1", 4222)
    config = tmp_path / "export.yaml"
    config.write_text(
        f"sinks:\n  - kind: nats\n    name: jetstream\n    url: nats://127.0.0.1:{forwarder.port}\n"
        f"    stream: {name}\n    subject: {subject}\n    ack_timeout_s: 1\n"
        "batch: 1000\npoll_s: 0.1\nretry_max_s: 0.5\n"
    )
    server = Server(
        tmp_path, *ops_only_dirs, opa_bin, OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER,
        OPSGATE_MAX_IN_FLIGHT="1000", OPSGATE_REQUEST_TIMEOUT_S="30",
    )  # fmt: skip
    try:
        statuses: list[int] = []
        half = threading.Event()

        def decide_all() -> None:
            items = [ops_facts(failures=i % 2) for i in range(PER_BATCH)]
            for call in range(TOTAL // PER_BATCH):
                response = server.client.post("/decide/batch", json={"items": items}, timeout=30)
                statuses.append(response.status_code)
                assert response.json()["decided"] == PER_BATCH
                if call == TOTAL // PER_BATCH // 3:
                    half.set()

        decider = threading.Thread(target=decide_all)
        decider.start()
        half.wait(60)
        forwarder.blackhole()
        cut_at = time.monotonic()
        down = wait_for(lambda: (s := ready_export(server)) and not s["ok"] and s["lag"] > 0 and s, 8, "sink down")
        assert down["error"].startswith("NATS ")
        metrics = export_samples(server, "jetstream")
        assert metrics["opsgate_export_up"] == 0 and metrics["opsgate_export_lag"] > 0
        time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))  # the cut lasts 10 s, whatever was checked in it
        forwarder.sever()  # what the forwarder held of the failed batches is lost: only a resend brings it
        forwarder.restore()
        decider.join(120)
        assert not decider.is_alive()
        assert statuses == [200] * (TOTAL // PER_BATCH)  # every decision answered while the sink was down
        wait_for(lambda: (s := ready_export(server))["lag"] == 0 and s["ok"], 60, "the stream caught up")
    finally:
        server.stop()
        forwarder.close()

    messages = [decode(data) for data in asyncio.run(_read_stream(name, subject))]
    records = [m for m in messages if isinstance(m, RecordMessage)]
    assert len(messages) == len(records) == TOTAL  # the Nats-Msg-Id header dropped every resend
    assert [(m.writer, m.seq) for m in records] == [(WRITER, seq) for seq in range(1, TOTAL + 1)]
    report = verify_stream(messages)
    assert (report.ok, report.error, report.records, report.first_seq) == (True, None, {WRITER: TOTAL}, {WRITER: 1})
    assert {json.loads(m.body)["kind"] for m in records} == {"decision"}

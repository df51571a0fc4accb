"""The exporter over a real SQLite log with a sink of the test's own: failures retried without losing
the place, a checkpoint only after the records it covers, and the cursor kept across a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from service.adapters.store import StoreLog, open_log
from service.domain.export import Message, RecordMessage
from service.ports.export import ExportConfig, SinkUnavailable
from service.usecases.export import Exporter, exporting
from tests.records import typed

CONFIG = ExportConfig(sinks=[], batch=3, poll_s=0.01, retry_max_s=0.05)


class FlakySink:
    """Fails its first sends (an unexpected error, then an unavailable sink), then takes everything."""

    name = "fake"

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.received: list[Message] = []

    async def send(self, messages: list[Message]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.received.extend(messages)

    async def close(self) -> None:
        pass


def outcomes(log: StoreLog, first: int, count: int) -> None:
    records = [
        typed({"kind": "outcome", "decision_id": f"d-{n}", "created_at": f"2026-12-04T10:00:{n:02d}.000000+00:00",
               "caller": "exec", "outcome": {"status": "SUCCEEDED", "detail": "done"}})
        for n in range(first, first + count)
    ]  # fmt: skip
    asyncio.run(log.records.append_many(records))


async def export_until_caught_up(log: StoreLog, sink: FlakySink, checkpoints: Path, shipped: int) -> None:
    exporter = Exporter(CONFIG, [sink], log.exports, "w1", checkpoints)
    async with exporting(exporter):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = (await exporter.status())["fake"]
            if status.ok and status.lag == 0 and status.checkpoints == shipped:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"the exporter did not catch up: {status}")


def shown(messages: list[Message]) -> list[object]:
    return [m.seq if isinstance(m, RecordMessage) else m.name for m in messages]


def test_failures_are_retried_in_order_and_the_place_is_kept_across_a_restart(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "20261204T100007Z-w1-7.json").write_text('{"tree_size": 7}')
    (checkpoints / "20261204T100007Z-w2-3.json").write_text('{"tree_size": 3}')  # another writer's: not ours to ship
    log = open_log(str(tmp_path / "decisions.db"), "w1")
    try:
        outcomes(log, 1, 7)
        sink = FlakySink([RuntimeError("a bug in a sink"), SinkUnavailable("down")])
        asyncio.run(export_until_caught_up(log, sink, checkpoints, shipped=1))
        assert shown(sink.received) == [1, 2, 3, 4, 5, 6, 7, "20261204T100007Z-w1-7.json"]

        outcomes(log, 8, 2)
        again = FlakySink([])
        asyncio.run(export_until_caught_up(log, again, checkpoints, shipped=0))
        assert shown(again.received) == [8, 9]  # from the kept cursor; the checkpoint was taken already
    finally:
        log.close()

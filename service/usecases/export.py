"""The exporter: a background task per sink that feeds it from the log, at least once, in order.

Each sink has a cursor in the log's database (the last seq of this process's chain it
acknowledged); a round reads the records after it, sends them, and moves the cursor only once
the sink acknowledged them all.  A sink that fails keeps its cursor, is retried with a growing
pause, and its lag (records not yet exported) grows; the log keeps everything and the decision
path never waits for it: the exporter only reads committed records.

With ``serve --workers N`` every worker exports its own chain (``<writer>-w<k>``): the chains are
independent, so no worker waits for another, no cursor row is shared, and a restarted worker
resumes its chain where its cursor stands; replicas on PostgreSQL do the same.  Checkpoint files
are shipped by the process whose writer the file names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from service.background import beside
from service.domain.export import CheckpointMessage, Message, record_message
from service.errors import OpsgateError
from service.ports.export import ExportConfig, ExportCursors, ExportStatus, Sink, SinkUnavailable

log = logging.getLogger("opsgate.export")


class _State:
    def __init__(self) -> None:
        self.seq = -1  # the sink's cursor once read from the log
        self.ok = True
        self.error: str | None = None
        self.checkpoints = 0
        self.shipped: set[str] | None = None  # checkpoint names the sink took (read from the log once)
        self.next_scan = 0.0  # when the checkpoints directory may be listed again


_SCAN_S = 1.0


class Exporter:
    """Feeds each of ``sinks`` from this writer's chain (``cursors``) and from ``checkpoints_dir``."""

    def __init__(
        self, config: ExportConfig, sinks: list[Sink], cursors: ExportCursors, writer: str, checkpoints_dir: Path | None
    ) -> None:
        self.config = config
        self.sinks = sinks
        self.cursors = cursors
        self.checkpoints_dir = checkpoints_dir
        self._own_checkpoint = re.compile(rf".-{re.escape(writer)}-[0-9]+\.json$")
        self._states = {sink.name: _State() for sink in sinks}
        self._head = 0

    async def status(self) -> dict[str, ExportStatus]:
        """Each sink's lag and state now (the chain's head is read from the log)."""
        with contextlib.suppress(OpsgateError):  # the log cannot be read now (/ready says so): the last head stands
            self._head = await self.cursors.head()
        head = self._head
        return {
            name: ExportStatus(
                max(head - max(state.seq, 0), 0), max(state.seq, 0), state.ok, state.error, state.checkpoints
            )
            for name, state in self._states.items()
        }

    async def run(self, sink: Sink) -> None:
        """Feed ``sink`` until cancelled."""
        state = self._states[sink.name]
        pause = self.config.poll_s
        while True:
            try:
                if state.seq < 0:  # the cursor is read in the loop: a log unreadable at start is retried too
                    state.seq = await self.cursors.position(sink.name)
                sent = await self._round(sink, state)
            except Exception as error:  # whatever fails, the export goes on: reported, then retried
                _failed(sink.name, state, error)
                pause = min(max(pause * 2, self.config.poll_s), self.config.retry_max_s)
                await asyncio.sleep(pause)
                continue
            if not state.ok:
                log.info("export to %s resumed at seq %d", sink.name, state.seq + 1)
            state.ok, state.error, pause = True, None, self.config.poll_s
            if not sent:
                await asyncio.sleep(self.config.poll_s)

    async def _round(self, sink: Sink, state: _State) -> bool:
        """Send one batch of records, then (once caught up) the new checkpoint files; whether anything was sent."""
        rows = await self.cursors.after(state.seq, self.config.batch)
        if rows:
            await sink.send([record_message(row) for row in rows])
            await self.cursors.advance(sink.name, rows[-1].seq)
            state.seq = rows[-1].seq
        if len(rows) == self.config.batch:
            return True
        # caught up with the chain as it was read: every record a checkpoint written before covers
        # is sent, so a consumer never gets a checkpoint before its records
        shipped = await self._checkpoints(sink, state)
        state.checkpoints += shipped
        return bool(rows) or shipped > 0

    async def _checkpoints(self, sink: Sink, state: _State) -> int:
        """Ship this writer's checkpoint files the sink has not taken yet, oldest name first (the
        directory is listed at most once a second)."""
        now = time.monotonic()
        if self.checkpoints_dir is None or now < state.next_scan:
            return 0
        state.next_scan = now + _SCAN_S
        names = await asyncio.to_thread(_checkpoint_names, self.checkpoints_dir)
        mine = [name for name in names if self._own_checkpoint.search(name)]
        if state.shipped is None and mine:
            state.shipped = await self.cursors.exported_checkpoints(sink.name)
        count = 0
        for name in mine:
            if state.shipped is None or name in state.shipped:
                continue
            text = await asyncio.to_thread((self.checkpoints_dir / name).read_text, encoding="utf-8")
            messages: list[Message] = [CheckpointMessage(name=name, body=text)]
            await sink.send(messages)
            await self.cursors.checkpoint_exported(sink.name, name)
            state.shipped.add(name)
            count += 1
        return count

    async def close(self) -> None:
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:  # closing a sink that is down must not stop the shutdown
                log.exception("closing export sink %s", sink.name)


def _failed(name: str, state: _State, error: Exception) -> None:
    """Mark the sink down; log the first failure (an unexpected one with its traceback), not every retry."""
    if state.ok or str(error) != state.error:
        if isinstance(error, (SinkUnavailable, OpsgateError)):
            log.warning("export to %s failed, retrying from seq %d: %s", name, state.seq + 1, error)
        else:
            log.exception("export to %s: unexpected failure, retrying from seq %d", name, state.seq + 1)
    state.ok, state.error = False, str(error)


def _checkpoint_names(directory: Path) -> list[str]:
    """The finished checkpoint files (written by rename: a temporary file is not ``*.json``)."""
    try:
        return sorted(entry.name for entry in directory.iterdir() if entry.suffix == ".json" and entry.is_file())
    except FileNotFoundError:
        return []


@asynccontextmanager
async def exporting(exporter: Exporter | None) -> AsyncIterator[None]:
    """Run the exporter's sinks beside the block; close them on the way out."""
    if exporter is None:
        yield
        return
    try:
        async with AsyncExitStack() as stack:
            for sink in exporter.sinks:
                await stack.enter_async_context(beside(exporter.run(sink), f"opsgate-export-{sink.name}", log))
            yield
    finally:
        await exporter.close()


def checkpoint_messages(directory: Path | None) -> list[CheckpointMessage]:
    """Every checkpoint file in ``directory``, by name, as messages (``opsgate log export``)."""
    if directory is None:
        return []
    return [
        CheckpointMessage(name=name, body=(directory / name).read_text(encoding="utf-8"))
        for name in _checkpoint_names(directory)
    ]

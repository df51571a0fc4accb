"""The workers of ``serve --workers N`` as one service: a version change reaches every worker.

The worker that receives ``POST /admin/reload``, ``/admin/rollback`` or ``/admin/activate`` (with
``--watch``, worker 0 when the files change) takes the workers' lock, a file lock in the supervisor's
directory (``Settings.workers_dir``), so two changes never interleave.  It loads, checks and registers
the version in the shared log exactly as one process does, and swaps to it; a broken version is
refused there, with its file:line:column problems, and no other worker hears of it.  Then it writes
``target.json`` (the version every worker serves) and sends SIGUSR1 to the supervisor, which forwards
it to every worker.  A worker woken by it, and a worker that starts or restarts, activates the target
version from the log's versions table (its stored files, checked again) and writes its roster file
``worker-<writer>.json`` (pid, writer, version, rulesets), which ``/ready`` and ``/ui/rulesets`` read.
The call answers once every live worker's roster names the new version, or after ``CONVERGE_S``
with the roster as it stands.  With one process there is no directory: the runtime swaps alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from service.authoring.catalog import Catalog
from service.background import beside
from service.errors import OpsgateError
from service.settings import Settings
from service.usecases.serving import Runtime
from service.usecases.versions import RunningVersion

log = logging.getLogger("opsgate.workers")

CONVERGE_S = 60.0  # how long a change waits for every worker to serve it
_POLL_S = 0.01  # between two looks at the roster (or at the lock) while waiting


class Fleet:
    """This process's runtime, and through the supervisor's directory the other workers'."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.directory = runtime.settings.workers_dir  # None: one process
        self._wake = asyncio.Event()
        self._moving = asyncio.Lock()  # a change this worker makes, or its following another's: one at a time
        self._changes: set[asyncio.Future[dict[str, Any]]] = set()

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def current(self) -> RunningVersion:
        return self.runtime.current

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    async def reload(self) -> dict[str, Any]:
        return await self._change(self.runtime.reload)

    async def rollback(self) -> dict[str, Any]:
        return await self._change(self.runtime.rollback)

    async def activate(self, version: str) -> dict[str, Any]:
        return await self._change(lambda: self.runtime.activate(version))

    def workers(self) -> list[dict[str, Any]]:
        """Every live worker and the version it serves, by writer; with one process, this one."""
        if self.directory is None:
            return [self._entry()]
        found = []
        for path in sorted(self.directory.glob("worker-*.json")):
            with contextlib.suppress(OSError, ValueError):
                entry = json.loads(path.read_text())
                if _alive(entry["pid"]):
                    found.append(entry)
        return found

    async def _change(self, swap: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        if self.directory is None:
            return {**await swap(), "workers": self.workers()}
        # a call given up on (its request timed out) must not leave the workers half-moved: the change goes on
        task = asyncio.ensure_future(self._everywhere(self.directory, swap))
        self._changes.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[dict[str, Any]]) -> None:
        self._changes.discard(task)
        if not task.cancelled() and task.exception() is not None:  # its caller, if gone, is told nothing
            log.info("a version change ended with %r", task.exception())

    async def _everywhere(self, directory: Path, swap: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        async with _locked(directory / "lock"), self._moving:
            result = await swap()  # refused (422, 409, 404): raised here, target.json unchanged
            self._write_roster()
            if _read_target(directory) != result["version"]:
                target = {"version": result["version"], "by": self.runtime.log.writer}
                _write_json(directory / "target.json", target)
                os.kill(os.getppid(), signal.SIGUSR1)  # the supervisor wakes every worker
            return {**result, "workers": await self._converged(result["version"])}

    async def _converged(self, version: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + CONVERGE_S
        workers = self.workers()
        while any(w["version"] != version for w in workers):
            if time.monotonic() > deadline:
                log.error("not every worker serves version %s after %.0f s: %s", version[:12], CONVERGE_S, workers)
                break
            await asyncio.sleep(_POLL_S)
            workers = self.workers()
        return workers

    async def follow(self) -> None:
        """Serve the target version whenever SIGUSR1 says it may have changed; runs until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.sync()

    async def sync(self) -> None:
        """Serve the target version, if another worker has set one this worker does not serve yet."""
        if self.directory is None:
            return
        async with self._moving:  # never while this worker's own change has swapped but not yet set the target
            target = _read_target(self.directory)
            if target is not None and target != self.runtime.current.version:
                try:
                    await self.runtime.activate(target)
                except OpsgateError as error:
                    log.error("could not serve version %s (%s); still serving %s", target[:12], error.message,
                              self.runtime.current.version[:12])  # fmt: skip
                except Exception:  # the worker goes on serving what it serves, and tries again at the next signal
                    log.exception("could not serve version %s", target[:12])
            self._write_roster()

    def _entry(self) -> dict[str, Any]:
        served = self.runtime.current
        return {"pid": os.getpid(), "writer": self.runtime.log.writer, "version": served.version,
                "rulesets": served.catalog.ruleset_versions}  # fmt: skip

    def _write_roster(self) -> None:
        if self.directory is not None:
            _write_json(self.directory / f"worker-{self.runtime.log.writer}.json", self._entry())

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """With several workers: follow the target version for as long as the block runs, starting
        with the one set before this worker started."""
        if self.directory is None:
            yield
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._wake.set)
        try:
            await self.sync()
            async with beside(self.follow(), "opsgate-follow", log):
                yield
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
            with contextlib.suppress(OSError):
                (self.directory / f"worker-{self.runtime.log.writer}.json").unlink()


@asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """The workers' lock, taken without blocking the event loop, released however the block ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_target(directory: Path) -> str | None:
    try:
        version: str = json.loads((directory / "target.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Written whole or not at all: a reader sees the old file or the new one."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(value))
    scratch.replace(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

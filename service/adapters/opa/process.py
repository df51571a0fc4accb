"""The supervised OPA child: one ``opa run --server`` on a unix socket in a private runtime
directory, loaded with the bundle written there.  A supervisor restarts it when it dies, checks
its ``/health`` periodically, and kills and restarts it when it stays unhealthy.

The runtime directory, ``opsgate-opa-<pid>-<random>`` in the temporary directory, names the process
that created it; a service killed outright (SIGKILL) cannot remove its own, so each new one removes
those whose process is gone.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from service.adapters.opa.bundle import write_bundle
from service.adapters.opa.client import OpaHttpClient
from service.authoring.policies import PolicyBundle
from service.errors import OpaHttpError, OpaStartFailed, OpsgateError

log = logging.getLogger("opsgate.guardrails")  # the name log lines have always carried

RUNTIME_PREFIX = "opsgate-opa-"
_RUNTIME_NAME = re.compile(re.escape(RUNTIME_PREFIX) + r"([0-9]+)-[^/]+")
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if hasattr(ctypes, "CDLL") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_runtime_dirs(parent: Path | None = None) -> list[Path]:
    """Remove the runtime directories under ``parent`` (the temporary directory) whose creating process is
    no longer running; the ones removed.  Only this user's own directories, never a symlink, never one of
    a live process (another service, another worker's, this process's); two services sweeping at once may
    race for the same directory, and the one that loses finds it gone."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent or tempfile.gettempdir()))
    except OSError:
        return removed
    for entry in entries:
        match = _RUNTIME_NAME.fullmatch(entry.name)
        if match is None or int(match[1]) < 1 or _alive(int(match[1])):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            log.info("removed the stale OPA runtime directory %s (process %s is gone)", entry.path, match[1])
            removed.append(Path(entry.path))
    return removed


class HealthPolicy(msgspec.Struct, frozen=True):
    """How OPA's ``GET /health`` is watched."""

    interval_s: float = 1.0  # between two checks
    restart_after_s: float = 10.0  # a child unhealthy this long is killed and restarted

    @property
    def timeout_s(self) -> float:  # a check never outlasts the interval (nor 1 s)
        return min(self.interval_s, 1.0)


async def probe_health(client: OpaHttpClient, timeout: float) -> bool:
    """OPA's ``GET /health`` answered 200 within ``timeout``."""
    try:
        return await asyncio.wait_for(client.get("/health"), timeout=timeout) == 200
    except (OpaHttpError, TimeoutError):
        return False


class OpaProcess:
    """One supervised ``opa run --server`` child on a private unix socket."""

    def __init__(
        self,
        opa_bin: str,
        restart_backoff: float = 0.2,
        max_backoff: float = 2.0,
        health: HealthPolicy | None = None,
        on_up: Callable[[], None] | None = None,
    ) -> None:
        self.opa_bin = opa_bin
        self._on_up = on_up  # called when a restarted or recovered child answers its health check again
        remove_stale_runtime_dirs()
        self.runtime_dir = Path(tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIX}{os.getpid()}-"))
        os.chmod(self.runtime_dir, 0o700)
        self.socket = self.runtime_dir / "opa.sock"
        self.address = f"unix://{self.socket}"
        self.restarts = 0
        self.unhealthy_kills = 0  # children killed for staying unhealthy (each is then restarted)
        self.health = health or HealthPolicy()
        self.healthy = False  # the last health check (or start) found it answering
        self._unhealthy_since: float | None = None
        self._bundle_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._backoff = (restart_backoff, max_backoff)
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def up(self) -> bool:
        """Running and answering its last health check."""
        return self.running and self.healthy

    async def start(self, bundle: PolicyBundle, revision: str) -> None:
        self._bundle_dir = write_bundle(bundle, self.runtime_dir / "bundle", revision)
        await self._spawn()
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self.socket.unlink(missing_ok=True)
        args = [
            self.opa_bin, "run", "--server", "--addr", self.address, "--bundle", str(self._bundle_dir),
            "--skip-version-check", "--disable-telemetry", "--log-level", "error",
            "--unix-socket-perm", "700", "--shutdown-grace-period", "1",
        ]  # fmt: skip
        with open(self.runtime_dir / "opa.log", "ab") as out:
            self._proc = subprocess.Popen(
                args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        await self._wait_healthy(timeout=15.0)
        self.healthy, self._unhealthy_since = True, None

    async def _wait_healthy(self, timeout: float) -> None:
        client = OpaHttpClient(self.address)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise OpaStartFailed(
                    f"opa exited at start (code {self._proc and self._proc.returncode}): {self.log_tail()}"
                )
            if await probe_health(client, timeout=1.0):
                return
            await asyncio.sleep(0.02)
        raise OpaStartFailed(f"opa did not become healthy within {timeout:g}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.runtime_dir / "opa.log").read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.health.interval_s
        while not self._stopping:
            await asyncio.sleep(0.1)
            if self._stopping:
                return
            if not self.running:
                delay = await self._restart(delay)
                next_check = loop.time() + self.health.interval_s
            elif loop.time() >= next_check:
                await self._check_health()
                next_check = loop.time() + self.health.interval_s

    async def _restart(self, delay: float) -> float:
        """Restart the dead child after ``delay``; the next delay (doubled after a failed restart)."""
        self.healthy = False
        code = self._proc.returncode if self._proc else None
        log.warning("opa child exited (code %s); restarting in %.1fs", code, delay)
        await asyncio.sleep(delay)
        if self._stopping:
            return delay
        self.restarts += 1  # counted at spawn: requests may reach the new child before it is polled healthy
        try:
            await self._spawn()
        except (OpsgateError, OSError) as error:  # OSError: opa cannot even run (binary gone, no fork)
            log.error("opa restart failed: %s", error)
            return min(delay * 2, self._backoff[1])
        log.warning("opa child restarted (pid %s)", self.pid)
        self._came_up()
        return self._backoff[0]

    async def _check_health(self) -> None:
        """One /health check; a child unhealthy for ``restart_after_s`` is killed (and so restarted)."""
        if await probe_health(OpaHttpClient(self.address), self.health.timeout_s):
            was_healthy, self.healthy, self._unhealthy_since = self.healthy, True, None
            if not was_healthy:
                log.warning("opa child healthy again (pid %s)", self.pid)
                self._came_up()
            return
        now = asyncio.get_running_loop().time()
        if self._unhealthy_since is None:
            log.warning("opa child (pid %s) failed its health check", self.pid)
            self._unhealthy_since = now
        self.healthy = False
        if now - self._unhealthy_since >= self.health.restart_after_s and self._proc is not None:
            log.error(
                "opa child (pid %s) unhealthy for %.1fs: killing it to restart", self.pid, now - self._unhealthy_since
            )
            self._proc.kill()
            self.unhealthy_kills += 1
            self._unhealthy_since = None

    def _came_up(self) -> None:
        if self._on_up is not None:
            self._on_up()

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._proc.wait, 5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

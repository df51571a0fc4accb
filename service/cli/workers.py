"""``opsgate serve --workers N``: N serving processes sharing one listening socket.

The parent binds the socket, forks the workers and supervises them: a worker that dies is started
again (with backoff); SIGTERM or SIGINT stops them all.  Each worker is a whole service: its own
event loop, rules engine, OPA child (one per served version, as with one process) and decision-log
writer.  Each writes its own hash chain, ``<writer_id>-w<k>``, so the workers never wait for one
another's chain lock; ``opsgate log verify`` walks every chain.  The parent keeps a directory the
workers share (``Settings.workers_dir``): the version they all serve and each worker's roster
(service/usecases/fleet.py); a SIGUSR1 it receives is forwarded to every worker, to serve that version.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from service.settings import Settings

log = logging.getLogger("opsgate.workers")

App = TypeVar("App")
_PR_SET_PDEATHSIG = 1
_RESTART_BACKOFF = (0.5, 10.0)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s settings: its own chain in the decision log.  A worker runs the service
    directly (service/cli/serve.py's _serve_on), never that module's main, so it does not fork
    workers of its own."""
    return msgspec.structs.replace(settings, writer_id=f"{settings.writer_id}-w{index}", worker=index)


class Supervisor(Generic[App]):
    """Forks ``settings.workers`` workers, each serving ``build(its settings)`` on the shared socket through
    ``serve(app, sock)``, and keeps them running.  The apps are built here, before any fork, so a bad
    configuration stops ``serve`` at once instead of failing in every worker, restart after restart."""

    def __init__(
        self, settings: Settings, build: Callable[[Settings], App], serve: Callable[[App, socket.socket], None]
    ) -> None:
        if settings.session_secret is None:  # one secret for all: a session or CSRF token signed by one
            # worker must hold at every other (each connection may reach any worker), and after a restart
            settings = msgspec.structs.replace(settings, session_secret=secrets.token_hex(32))
        self.directory = Path(tempfile.mkdtemp(prefix="opsgate-workers-"))
        settings = msgspec.structs.replace(settings, workers_dir=self.directory)
        self.settings = settings
        try:
            self.apps = [build(worker_settings(settings, index)) for index in range(settings.workers)]
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self.serve = serve
        self.children: dict[int, int] = {}  # pid -> worker index
        self.stopping = False

    def run(self) -> int:
        try:
            return self._supervise(bind(self.settings.host, self.settings.port))
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _supervise(self, sock: socket.socket) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGUSR1, self._forward)
        log.info("opsgate: %d workers on %s:%d", self.settings.workers, self.settings.host, self.settings.port)
        for index in range(self.settings.workers):
            self._fork(index, sock)
        delays = dict.fromkeys(range(self.settings.workers), _RESTART_BACKOFF[0])
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid not in self.children:
                continue
            index = self.children.pop(pid)
            if self.stopping:
                continue
            log.error("worker %d (pid %d) exited (%s); restarting in %.1fs", index, pid, _status(status), delays[index])
            time.sleep(delays[index])
            delays[index] = min(delays[index] * 2, _RESTART_BACKOFF[1])
            if not self.stopping:
                self._fork(index, sock)
        sock.close()
        return 0

    def _fork(self, index: int, sock: socket.socket) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the app follows it (usecases/fleet.py)
                ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
                self.serve(self.apps[index], sock)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's loop
                log.exception("worker %d failed", index)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = index

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _forward(self, signum: int, _frame: object) -> None:
        """A worker changed the version every worker serves: wake them all (it included)."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"code {os.WEXITSTATUS(status)}"

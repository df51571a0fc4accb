"""Deadlines on the log's database work: a statement running past its deadline has its connection
broken from this thread (the dialect's ``abort``), so a thread waiting on a silent peer, which no
timeout of the driver or the kernel wakes, fails instead of blocking for ever."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("opsgate.log")


class Watchdog:
    def __init__(self, abort: Callable[[Any], None], interval_s: float) -> None:
        self._abort = abort
        self._interval = interval_s
        self._watched: dict[int, tuple[Any, float, Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsgate-log-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def watch(self, connection: Any, deadline_s: float, on_stuck: Callable[[], None]) -> Iterator[None]:
        """Call ``on_stuck`` and break ``connection`` if the block takes longer than ``deadline_s``."""
        key = next(self._ids)
        with self._lock:
            self._watched[key] = (connection, time.monotonic() + deadline_s, on_stuck)
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)

    def abort_all(self) -> None:
        """Break every watched connection now (closing: nothing may keep a thread waiting)."""
        with self._lock:
            stuck = [connection for connection, _, _ in self._watched.values()]
        for connection in stuck:
            self._abort_quietly(connection)

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            now = time.monotonic()
            with self._lock:
                late = [key for key, (_, deadline, _) in self._watched.items() if deadline <= now]
                expired = [self._watched.pop(key) for key in late]
            for connection, _, on_stuck in expired:
                on_stuck()
                self._abort_quietly(connection)

    def _abort_quietly(self, connection: Any) -> None:
        try:
            self._abort(connection)
        except Exception:  # noqa: BLE001 - a connection already gone needs no breaking
            log.debug("breaking a stuck decision log connection failed", exc_info=True)

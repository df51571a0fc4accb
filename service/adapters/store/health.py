"""Whether the decision log commits: its state, its failures counted by cause, and the log lines
that say so (at most one per cause every few seconds, with the number left out)."""

from __future__ import annotations

import logging
import threading
import time

from service.ports.log import LogHealth

log = logging.getLogger("opsgate.log")

#: Seconds between two error lines of one cause; the failures in between are counted in the next.
LOG_EVERY_S = 5.0


class Health:
    """Written by the writer thread and the watchdog, read by /ready and the metrics."""

    def __init__(self, description: str, log_every_s: float = LOG_EVERY_S) -> None:
        self.description = description
        self.log_every_s = log_every_s
        self._lock = threading.Lock()
        self._state = LogHealth()
        self._errors: dict[str, int] = {}
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def failed(self, cause: str, error: str, writes: int) -> None:
        """``writes`` writes could not commit, for ``cause``."""
        error = " ".join(error.split())  # one line: libpq's messages run over several
        with self._lock:
            self._errors[cause] = self._errors.get(cause, 0) + writes
            self._state = LogHealth(False, cause, error, dict(self._errors))
            now = time.monotonic()
            if now - self._last_logged.get(cause, -self.log_every_s) < self.log_every_s:
                self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
                return
            self._last_logged[cause] = now
            suppressed = self._suppressed.pop(cause, 0)
        more = f" ({suppressed} more failures of this cause since the last line)" if suppressed else ""
        log.error("decision log %s cannot commit (%s): %s%s", self.description, cause, error, more)

    def committed(self) -> None:
        """A write committed: the log is ok again."""
        if self._state.ok:
            return
        with self._lock:
            was = self._state
            self._state = LogHealth(True, None, None, dict(self._errors))
        log.warning("decision log %s commits again (after %s: %s)", self.description, was.cause, was.error)

    def state(self) -> LogHealth:
        return self._state

"""Whose turn it is to write a SQLite log file, among the processes writing it (``--workers``).

SQLite lets one transaction write at a time; a writer that finds the file locked sleeps in its busy
handler (1, 2, 5, 10 … up to 100 ms between tries) instead of being woken when the lock is free.
Several processes group-committing to one file then spend their time asleep while the file is
idle, and a record's wait grows to hundreds of milliseconds.  The writers therefore take turns
on an ``flock`` of a file beside the database first: the kernel hands the lock to a waiter the
moment it is released, so the file stays busy and each process's next group grows while it waits.

The turn has a deadline: a process that holds it too long (stopped, or stuck on the disk) makes
the others' writes fail as ``locked`` after ``timeout_s``, visible on /ready, rather than hang.
The lock dies with its process, so a killed writer never strands it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path


class TurnTimeout(Exception):  # noqa: N818 - the writer reports it as a failed write (DecisionLogError)
    """Another process held the write turn past the deadline."""


class _Attempt:
    """One wait for the turn on a file descriptor of its own (flock locks belong to an open file,
    so a wait given up on is closed, with the lock if it was granted after all)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.granted = threading.Event()
        self.abandoned = False
        self.lock = threading.Lock()

    def wait(self) -> None:  # on a thread of its own: a blocking flock cannot be given a deadline
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            os.close(self.fd)
            return
        with self.lock:
            if self.abandoned:
                os.close(self.fd)
                return
            self.granted.set()

    def give_up(self) -> bool:
        """True when given up in time; False when the turn was granted meanwhile (then it is held)."""
        with self.lock:
            if self.granted.is_set():
                return False
            self.abandoned = True
            return True


class WriteTurn:
    """The write turn of one database file, for this process's writer thread."""

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.fspath(database)}.writer-lock")
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self, timeout_s: float) -> Iterator[None]:
        """Hold the turn for the ``with`` block; raises TurnTimeout after ``timeout_s`` of waiting."""
        self._fd = self._take(timeout_s)
        try:
            yield
        finally:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the lock: the next waiter is woken now

    def _take(self, timeout_s: float) -> int:
        attempt = _Attempt(self.path)
        try:  # the usual case on one process, or a quiet file: free at once, no thread
            fcntl.flock(attempt.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return attempt.fd
        except BlockingIOError:
            pass
        threading.Thread(target=attempt.wait, name="opsgate-log-turn", daemon=True).start()
        if attempt.granted.wait(timeout_s) or not attempt.give_up():
            return attempt.fd
        raise TurnTimeout(
            f"another process has held the write lock of {self.path.name} for more than {timeout_s:g} s"
        )

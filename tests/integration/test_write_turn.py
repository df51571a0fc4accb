"""The write turn of a SQLite log file: processes writing one file take turns on an flock beside it,
handed over when released, with a deadline; on a real file and a real SQLite log."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.adapters.store import open_log
from service.adapters.store.dialect import Timeouts
from service.adapters.store.writelock import TurnTimeout, WriteTurn
from service.errors import DecisionLogError
from tests.conftest import sql
from tests.integration.test_decision_log_store import decision_record


@contextmanager
def turn_held_elsewhere(database: Path) -> Iterator[None]:
    """The turn held through a descriptor of its own, as another process's writer holds it."""
    fd = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_the_turn_is_a_lock_file_beside_the_database_taken_at_once_when_free(tmp_path: Path) -> None:
    turn = WriteTurn(tmp_path / "decisions.db")
    with turn.held(timeout_s=0.01):
        assert turn.path == tmp_path / "decisions.db.writer-lock"
        assert turn.path.exists()
    with turn.held(timeout_s=0.01):  # released by the first: free again at once
        pass


def test_a_waiter_gets_the_turn_when_its_holder_releases_it(tmp_path: Path) -> None:
    got_it = threading.Event()

    def waiter() -> None:
        with WriteTurn(tmp_path / "decisions.db").held(timeout_s=60):
            got_it.set()

    with turn_held_elsewhere(tmp_path / "decisions.db"):
        thread = threading.Thread(target=waiter)
        thread.start()
        # while it is held the waiter cannot have it (were the turn not exclusive, it would by now)
        assert not got_it.wait(0.3)
    assert got_it.wait(30), "the waiter was not handed the turn when it was released"
    thread.join(30)


def test_a_turn_held_past_the_deadline_fails_naming_the_lock_and_is_not_kept_when_granted_later(
    tmp_path: Path,
) -> None:
    database = tmp_path / "decisions.db"
    with turn_held_elsewhere(database):
        expected = r"another process has held the write lock of decisions\.db\.writer-lock for more than 0\.2 s"
        with pytest.raises(TurnTimeout, match=expected), WriteTurn(database).held(timeout_s=0.2):
            pass
    # the abandoned wait is granted once released, and lets go at once: the turn is free to take
    with WriteTurn(database).held(timeout_s=30):
        pass


def test_a_log_whose_turn_is_held_too_long_fails_its_writes_as_locked_then_commits_again(tmp_path: Path) -> None:
    database = tmp_path / "decisions.db"
    log = open_log(str(database), "w-1", timeouts=Timeouts(write_s=0.3))
    try:
        with turn_held_elsewhere(database):
            with pytest.raises(DecisionLogError, match="write lock of decisions.db.writer-lock for more than 0.3 s"):
                asyncio.run(log.records.append(decision_record(1)))
            health = log.health()
            assert (health.ok, health.cause, health.errors) == (False, "locked", {"locked": 1})
        asyncio.run(log.records.append(decision_record(2)))
        assert log.health().ok
    finally:
        log.close()
    assert sql(str(database), "SELECT COUNT(*) FROM log_entries") == [(1,)]


WRITER = """
import asyncio, sys
from service.adapters.store import open_log
from tests.integration.test_decision_log_store import decision_record

async def main(log, first, n):
    await asyncio.gather(*(log.records.append(decision_record(first + i)) for i in range(n)))

log = open_log(sys.argv[1], sys.argv[2])
try:
    asyncio.run(main(log, int(sys.argv[3]), int(sys.argv[4])))
finally:
    log.close()
"""


def test_three_processes_writing_one_file_commit_every_record_in_turn(tmp_path: Path) -> None:
    database = tmp_path / "decisions.db"
    open_log(str(database), "setup").close()  # the schema, before the writers race to create it
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(database), f"w-{n}", str(n * 1000), "400"], env=env)
        for n in range(3)
    ]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0]
    assert sql(str(database), "SELECT writer, COUNT(*), MAX(seq) FROM log_entries GROUP BY writer ORDER BY writer") == [
        ("w-0", 400, 400),
        ("w-1", 400, 400),
        ("w-2", 400, 400),
    ]

"""A service killed outright (SIGKILL) cannot remove its OPA runtime directory (bundle, socket, log); the
next service started on the machine removes it, and never one of a service still running."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.server import Server


def runtime_dirs(tmp: Path) -> set[Path]:
    return set(tmp.glob("opsgate-opa-*"))


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (an orphan's zombie waits for init, which may be slow to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_a_new_service_removes_the_runtime_directory_of_a_killed_one_and_keeps_a_live_ones(
    tmp_path: Path, copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    tmp = tmp_path / "tmp"  # the servers' own temporary directory: no other process's directory is touched
    tmp.mkdir()
    rules, rego = copied_dirs

    def start(name: str) -> tuple[Server, Path]:
        before = runtime_dirs(tmp)
        server = start_server(rules, rego, db=str(tmp_path / f"{name}.db"), TMPDIR=str(tmp))
        (created,) = runtime_dirs(tmp) - before
        assert (created / "bundle").is_dir()
        return server, created

    live, live_dir = start("live")
    killed, killed_dir = start("killed")
    opa_pid = killed.client.get("/ready").json()["opa"]["pid"]
    os.kill(killed.proc.pid, signal.SIGKILL)
    assert killed.proc.wait(10) == -signal.SIGKILL
    deadline = time.monotonic() + 30  # its OPA child follows it (parent-death signal)
    while running(opa_pid):
        assert time.monotonic() < deadline, "the killed service's OPA child outlived it"
        time.sleep(0.05)
    assert killed_dir.is_dir() and live_dir.is_dir()  # left behind by the SIGKILL

    restarted, restarted_dir = start("restarted")

    assert runtime_dirs(tmp) == {live_dir, restarted_dir}
    for server in (live, restarted):
        assert server.client.get("/ready").json()["opa"]["up"] is True
    assert "removed the stale OPA runtime directory" in restarted.log_text()

"""The stale OPA runtime directories: those of a process that is gone are removed, no other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.adapters.opa.process import RUNTIME_PREFIX, remove_stale_runtime_dirs


def gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def runtime_dir(parent: Path, pid: int | str, suffix: str = "abc123") -> Path:
    path = parent / f"{RUNTIME_PREFIX}{pid}-{suffix}"
    (path / "bundle").mkdir(parents=True)
    (path / "opa.log").write_text("log")
    return path


def test_only_the_directories_of_processes_that_are_gone_are_removed(tmp_path: Path) -> None:
    gone = gone_pid()
    stale = runtime_dir(tmp_path, gone)
    mine = runtime_dir(tmp_path, os.getpid())
    parents = runtime_dir(tmp_path, os.getppid())
    unnamed = runtime_dir(tmp_path, "x", "")  # no pid: whose it is cannot be told, so it stays
    old_style = tmp_path / f"{RUNTIME_PREFIX}k2j4h5g6"  # a name without a pid
    old_style.mkdir()
    other = tmp_path / f"other-{gone}-abc"
    other.mkdir()
    pid_zero = runtime_dir(tmp_path, 0)  # os.kill(0, ...) would mean the process group: never asked
    target = runtime_dir(tmp_path, os.getpid(), "target")
    link = tmp_path / f"{RUNTIME_PREFIX}{gone}-link"
    link.symlink_to(target)  # a link is not followed nor removed

    assert remove_stale_runtime_dirs(tmp_path) == [stale]

    left = {path.name for path in tmp_path.iterdir()}
    expected = {mine, parents, unnamed, old_style, other, pid_zero, target, link}
    assert left == {path.name for path in expected}
    assert (target / "bundle").is_dir()


def test_a_directory_already_gone_or_a_missing_parent_is_no_error(tmp_path: Path) -> None:
    assert remove_stale_runtime_dirs(tmp_path / "missing") == []
    assert remove_stale_runtime_dirs(tmp_path) == []

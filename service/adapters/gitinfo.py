"""Where a loaded version came from, when the rules directory is a git checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def last_commit(directory: Path) -> dict[str, Any] | None:
    """The checkout's HEAD commit (hash, author, date, subject) and whether the directory has
    uncommitted changes; None when ``directory`` is not in a git checkout or git is missing."""
    out = _git(directory, "log", "-1", "--format=%H%x00%an <%ae>%x00%aI%x00%s")
    if not out or out.count("\0") != 3:
        return None
    commit, author, date, subject = out.rstrip("\n").split("\0")
    status = _git(directory, "status", "--porcelain", "--", ".")
    return {"commit": commit, "author": author, "date": date, "subject": subject, "dirty": bool(status)}

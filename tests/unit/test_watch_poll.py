"""serve --watch survives a walk that fails (a directory removed while it is listed) and shuts down cleanly.

The runtime is a stand-in that counts reloads; the files are real ones in a temporary directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from service.usecases import watch as watch_module
from service.usecases.watch import watching


class CountingRuntime:
    def __init__(self, rules: Path, rego: Path) -> None:
        self.settings = SimpleNamespace(rules_dir=rules, rego_dir=rego, watch=True, watch_interval_s=0.02, worker=0)
        self.current = SimpleNamespace(version="v" * 12)
        self.catalog = SimpleNamespace(warnings=[])
        self.reloads = 0

    async def reload(self) -> dict[str, Any]:
        self.reloads += 1
        return {"changed": True, "version": f"version-{self.reloads}"}


def test_a_walk_that_fails_is_logged_and_the_next_change_still_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rules, rego = tmp_path / "rules", tmp_path / "rego"
    (rules / "sub").mkdir(parents=True)
    rego.mkdir()
    (rules / "sub" / "ops.yaml").write_text("a: 1\n")
    real_hash = watch_module.tree_hash
    calls = 0

    def vanishing_once(dirs: tuple[Path, ...]) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first poll after the start: a directory vanishes mid-walk
            raise FileNotFoundError(2, "No such file or directory", str(rules / "sub"))
        return real_hash(dirs)

    monkeypatch.setattr(watch_module, "tree_hash", vanishing_once)
    runtime = CountingRuntime(rules, rego)

    async def scenario() -> None:
        async with watching(runtime):  # type: ignore[arg-type]
            while calls < 3:
                await asyncio.sleep(0.01)
            (rules / "sub" / "ops.yaml").write_text("a: 2\n")
            for _ in range(500):
                if runtime.reloads:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(asyncio.wait_for(scenario(), 10))  # leaving ``watching`` must not raise
    assert runtime.reloads == 1
    assert "could not read the watched files ([Errno 2] No such file or directory: " in caplog.text
    assert "trying again at the next poll" in caplog.text
    assert "the watch had stopped" not in caplog.text


def test_a_watch_that_died_anyway_is_logged_and_shutdown_still_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rego").mkdir()
    calls = 0

    def broken(dirs: tuple[Path, ...]) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("not a file system error")
        return "hash"

    monkeypatch.setattr(watch_module, "tree_hash", broken)

    async def scenario() -> None:
        async with watching(CountingRuntime(tmp_path / "rules", tmp_path / "rego")):  # type: ignore[arg-type]
            while calls < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(scenario(), 10))  # does not raise RuntimeError
    assert "the watch had stopped" in caplog.text
    assert "RuntimeError: not a file system error" in caplog.text

"""service/usecases/serving.py's Runtime swaps versions through the start function bootstrap hands it:
fakes stand in for the running versions and the log; the catalogs are loaded from real files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from service.authoring.catalog import Catalog, load_catalog
from service.errors import Conflict
from service.settings import Settings
from service.usecases.serving import Runtime
from tests.conftest import copy_ops_only


class FakeVersion:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.in_flight = 0
        self.closed = False

    @property
    def version(self) -> str:
        return self.catalog.version

    async def retire(self) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True


class Starts:
    """The start function: records what it was asked to start."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Path, Path]] = []

    async def __call__(self, catalog: Catalog, rules_dir: Path, rego_dir: Path) -> Any:
        self.asked.append((catalog.version, rules_dir, rego_dir))
        return FakeVersion(catalog)


def runtime_over(rules: Path, rego: Path, starts: Starts) -> tuple[Runtime, FakeVersion]:
    served = FakeVersion(load_catalog(rules, rego))
    settings = Settings(rules_dir=rules, rego_dir=rego)
    never_read = SimpleNamespace(records=object(), versions=object(), approvals=object())  # reloads read no log
    return Runtime(settings, never_read, served, starts, None), served  # type: ignore[arg-type]


def test_an_unchanged_reload_starts_nothing_and_keeps_the_served_version(tmp_path: Path) -> None:
    rules, rego = copy_ops_only(tmp_path)
    starts = Starts()

    async def scenario() -> dict[str, Any]:
        runtime, served = runtime_over(rules, rego, starts)
        result = await runtime.reload()
        assert runtime.current is served
        return result

    result = asyncio.run(scenario())
    assert (result["action"], result["changed"]) == ("reload", False)
    assert starts.asked == []


def test_a_changed_reload_serves_the_version_started_and_retires_the_old_one(tmp_path: Path) -> None:
    rules, rego = copy_ops_only(tmp_path)
    starts = Starts()

    async def scenario() -> tuple[dict[str, Any], Runtime, FakeVersion]:
        runtime, served = runtime_over(rules, rego, starts)
        ops = rules / "ops.yaml"
        ops.write_text(ops.read_text() + "\n# a comment changes the version\n")
        result = await runtime.reload()
        await runtime.close()  # waits for the retiring version
        return result, runtime, served

    result, runtime, old = asyncio.run(scenario())
    assert result["changed"] is True
    assert result["previous"] == old.version != result["version"] == runtime.current.version
    assert starts.asked == [(result["version"], rules, rego)]
    assert runtime.history == [old.version, result["version"]]
    assert old.closed


def test_a_rollback_without_an_earlier_version_is_a_conflict(tmp_path: Path) -> None:
    rules, rego = copy_ops_only(tmp_path)
    runtime, _ = runtime_over(rules, rego, Starts())
    with pytest.raises(Conflict, match="no earlier version"):
        asyncio.run(runtime.rollback())


def test_the_retired_hook_runs_once_the_replaced_version_is_closed_and_not_for_an_unchanged_reload(
    tmp_path: Path,
) -> None:
    rules, rego = copy_ops_only(tmp_path)
    seen: list[bool] = []  # whether the replaced version was closed when the hook ran

    async def scenario() -> None:
        served = FakeVersion(load_catalog(rules, rego))
        settings = Settings(rules_dir=rules, rego_dir=rego)
        log = SimpleNamespace(records=object(), versions=object(), approvals=object())
        runtime = Runtime(settings, log, served, Starts(), None, retired=lambda: seen.append(served.closed))  # type: ignore[arg-type]
        await runtime.reload()  # nothing changed: nothing retired
        assert seen == []
        ops = rules / "ops.yaml"
        ops.write_text(ops.read_text() + "\n# a comment changes the version\n")
        await runtime.reload()
        await runtime.close()

    asyncio.run(scenario())
    assert seen == [True]


def test_a_retire_that_fails_is_logged_and_still_runs_the_hook_and_close_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules, rego = copy_ops_only(tmp_path)
    hooked: list[str] = []

    class FailingRetire(FakeVersion):
        async def retire(self) -> None:
            raise RuntimeError("OPA would not stop")

    async def scenario() -> None:
        served = FailingRetire(load_catalog(rules, rego))
        settings = Settings(rules_dir=rules, rego_dir=rego)
        log = SimpleNamespace(records=object(), versions=object(), approvals=object())
        runtime = Runtime(settings, log, served, Starts(), None, retired=lambda: hooked.append("retired"))  # type: ignore[arg-type]
        ops = rules / "ops.yaml"
        ops.write_text(ops.read_text() + "\n# a comment changes the version\n")
        await runtime.reload()
        await runtime.close()  # the failed retire does not fail the close

    asyncio.run(scenario())
    assert hooked == ["retired"]
    assert "OPA would not stop" in caplog.text and "retiring version" in caplog.text

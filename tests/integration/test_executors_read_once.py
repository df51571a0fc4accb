"""bootstrap.start reads the executors file once: the action types the log queues for executors and the
executors that deliver them come from the same read, so an edit of the file while the service starts
cannot leave actions queued that no executor takes (or the other way round)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service import bootstrap
from service.adapters.executors.config import load_executors
from service.adapters.store.records import Records
from service.ports.executors import ExecutorsConfig
from service.settings import Settings
from tests.conftest import OPA_TIMEOUT_MS, copy_ops_only


def test_the_executors_file_is_read_once_and_both_the_log_and_the_deliverer_use_that_read(
    tmp_path: Path, opa_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "executors.yaml"
    config.write_text(
        "executors:\n  TRIGGER_PROCESS:\n    url: http://127.0.0.1:9/actions\n    secret_env: EXECUTOR_SECRET\n"
    )
    reads: list[ExecutorsConfig] = []

    def read_then_edit(path: Path) -> ExecutorsConfig:
        reads.append(load_executors(path))  # the real read; then somebody edits the file
        config.write_text(
            "executors:\n  OPEN_INCIDENT:\n    url: http://127.0.0.1:9/actions\n    secret_env: EXECUTOR_SECRET\n"
        )
        return reads[-1]

    monkeypatch.setattr(bootstrap, "load_executors", read_then_edit)
    monkeypatch.setenv("EXECUTOR_SECRET", "a secret for the test")
    rules, rego = copy_ops_only(tmp_path)
    settings = Settings(
        db=str(tmp_path / "decisions.db"), rules_dir=rules, rego_dir=rego, opa_bin=opa_bin,
        opa_timeout_ms=OPA_TIMEOUT_MS, executors=config,
    )  # fmt: skip

    async def started_types() -> tuple[frozenset[str], frozenset[str]]:
        running = await bootstrap.start(settings)
        try:
            assert running.deliverer is not None
            records = running.log.records
            assert isinstance(records, Records)
            actions = records.chain.actions
            assert actions is not None
            queued = actions.types
            return queued, frozenset(running.deliverer.config.executors)
        finally:
            await running.close()

    queued, delivered = asyncio.run(started_types())
    assert len(reads) == 1
    assert queued == delivered == {"TRIGGER_PROCESS"}

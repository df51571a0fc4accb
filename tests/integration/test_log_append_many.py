"""The decision log's ``append_many``: a batch's records are committed together, in order, unsplit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from service.adapters.store.sql import SqlDecisionLog, verify_log
from service.errors import OpsgateError
from service.settings import from_env
from tests.integration.test_decision_log_store import decision_record


def test_a_batch_larger_than_a_group_commit_lands_in_order_and_unsplit(log: SqlDecisionLog, log_db: str) -> None:
    batch = [decision_record(n) for n in range(600)]  # beyond the writer's 512-record group

    async def run() -> tuple[list[Any], list[Any]]:
        singles = [asyncio.ensure_future(log.append(decision_record(1000 + n))) for n in range(5)]
        stored = await log.append_many(batch)
        return stored, list(await asyncio.gather(*singles))

    stored, singles = asyncio.run(run())
    assert [r.decision_id for r in stored] == [f"0000000{n:05d}" for n in range(600)]
    seqs = [r.seq for r in stored]
    assert seqs == list(range(seqs[0], seqs[0] + 600))  # no single append slipped in between
    assert {r.seq for r in singles}.isdisjoint(seqs)
    report = verify_log(log_db)
    assert report.intact and report.records == 605, str(report)


def test_the_benchmark_only_switch_writes_nothing_and_says_so(tmp_path: Path) -> None:
    db = str(tmp_path / "off.db")
    settings = from_env({"OPSGATE_BENCH_LOG_OFF": "1", "OPSGATE_DB": db})
    assert settings.bench_log_off is True
    store = SqlDecisionLog(settings.db, "replica-a", bench_log_off=settings.bench_log_off)
    try:
        stored = asyncio.run(store.append(decision_record(1)))
        assert (stored.id, stored.seq) == (0, 0)
        assert store.description == f"sqlite:{db} (OFF: OPSGATE_BENCH_LOG_OFF, nothing is written)"
    finally:
        store.close()
    assert verify_log(db).records == 0
    with pytest.raises(OpsgateError, match="OPSGATE_BENCH_LOG_OFF='maybe' is invalid"):
        from_env({"OPSGATE_BENCH_LOG_OFF": "maybe"})

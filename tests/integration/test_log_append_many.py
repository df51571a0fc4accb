"""The decision log's ``append_many``: a batch's records are committed together, in order, unsplit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench.logoff import open_unlogged
from service.adapters.store import StoreLog, verify_log
from service.settings import Settings, from_env
from tests.integration.test_decision_log_store import decision_record


def test_a_batch_larger_than_a_group_commit_lands_in_order_and_unsplit(log: StoreLog, log_db: str) -> None:
    batch = [decision_record(n) for n in range(600)]  # beyond the writer's 512-record group

    async def run() -> tuple[list[Any], list[Any]]:
        singles = [asyncio.ensure_future(log.records.append(decision_record(1000 + n))) for n in range(5)]
        stored = await log.records.append_many(batch)
        return stored, list(await asyncio.gather(*singles))

    stored, singles = asyncio.run(run())
    assert [r.decision_id for r in stored] == [f"0000000{n:05d}" for n in range(600)]
    seqs = [r.seq for r in stored]
    assert seqs == list(range(seqs[0], seqs[0] + 600))  # no single append slipped in between
    assert {r.seq for r in singles}.isdisjoint(seqs)
    report = verify_log(log_db)
    assert report.intact and report.records == 605, str(report)


def test_the_benchmarks_log_off_entry_writes_nothing_and_says_so(tmp_path: Path) -> None:
    db = str(tmp_path / "off.db")
    settings = from_env({"OPSGATE_DB": db}, writer_id="replica-a")
    store = open_unlogged(settings)
    try:
        stored = asyncio.run(store.records.append(decision_record(1)))
        assert (stored.id, stored.seq) == (0, 0)
        two = asyncio.run(store.records.append_many([decision_record(2), decision_record(3)]))
        assert [r.seq for r in two] == [0, 0]
        assert store.description == f"sqlite:{db} (OFF: python -m bench.logoff, nothing is written)"
    finally:
        store.close()
    assert verify_log(db).records == 0


def test_the_service_itself_has_no_switch_to_turn_the_log_off() -> None:
    assert not [name for name in Settings.__struct_fields__ if "log_off" in name]
    assert from_env({"OPSGATE_BENCH_LOG_OFF": "1"}) == from_env({})

"""The decision log's ``append_many``: a batch's records are committed together, in order, unsplit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from service.log_store import SqlDecisionLog, verify_log
from tests.integration.test_decision_log_store import decision


@pytest.fixture
def log(log_db: str) -> Iterator[SqlDecisionLog]:
    store = SqlDecisionLog(log_db, "replica-a")
    yield store
    store.close()


def test_a_batch_larger_than_a_group_commit_lands_in_order_and_unsplit(log: SqlDecisionLog, log_db: str) -> None:
    batch = [decision(n) for n in range(600)]  # beyond the writer's 512-record group

    async def run() -> tuple[list[Any], list[Any]]:
        singles = [asyncio.ensure_future(log.append(decision(1000 + n))) for n in range(5)]
        stored = await log.append_many(batch)
        return stored, list(await asyncio.gather(*singles))

    stored, singles = asyncio.run(run())
    assert [r.decision_id for r in stored] == [f"0000000{n:05d}" for n in range(600)]
    seqs = [r.seq for r in stored]
    assert seqs == list(range(seqs[0], seqs[0] + 600))  # no single append slipped in between
    assert {r.seq for r in singles}.isdisjoint(seqs)
    report = verify_log(log_db)
    assert report.intact and report.records == 605, str(report)

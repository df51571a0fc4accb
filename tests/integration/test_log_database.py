"""The decision log's Database: every write through its writer thread, a refusal rolled back, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.adapters.store import StoreLog
from service.domain.record import Resolution
from service.errors import DecisionLogError, NotFound
from tests.conftest import sql
from tests.integration.test_decision_log_store import decision_record


def test_sign_outs_versions_and_records_are_written_without_the_readers(
    log: StoreLog, log_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_reads(work: Any) -> Any:
        raise AssertionError("a write ran on a reader connection")

    monkeypatch.setattr(log.database, "read", no_reads)

    async def writes() -> None:
        await log.sessions.revoke_session("sid-out", 2**40)
        await log.versions.register_version("v1", [("rules/ops.yaml", b"x")], {"ops": "r1"}, None)
        await log.records.append(decision_record(1))

    asyncio.run(writes())
    assert sql(log_db, "SELECT sid FROM revoked_sessions") == [("sid-out",)]
    assert sql(log_db, "SELECT version, loads FROM versions") == [("v1", 1)]
    assert sql(log_db, "SELECT COUNT(*) FROM log_entries") == [(1,)]


def test_a_refused_write_is_rolled_back_and_raised_as_it_is(log: StoreLog, log_db: str) -> None:
    def refuse(connection: Any) -> None:
        connection.execute(log.database.dialect.sql("INSERT INTO revoked_sessions VALUES (?, ?)"), ("sid", 1))
        raise NotFound("nothing to do")

    with pytest.raises(NotFound, match="^nothing to do$"):
        asyncio.run(log.database.write(refuse))
    with pytest.raises(NotFound, match="is not awaiting approval"):
        asyncio.run(log.approvals.resolve({}, Resolution("d-none", "EXECUTED", "2026-11-21T10:00:00+00:00", "bob")))
    assert sql(log_db, "SELECT COUNT(*) FROM revoked_sessions") == [(0,)]


def test_a_failing_write_is_a_decision_log_error_and_the_writer_goes_on(log: StoreLog, log_db: str) -> None:
    with pytest.raises(DecisionLogError, match="^decision log write failed: "):
        asyncio.run(log.database.write(lambda c: c.execute("INSERT INTO no_such_table VALUES (1)")))
    asyncio.run(log.records.append(decision_record(1)))
    assert sql(log_db, "SELECT COUNT(*) FROM log_entries") == [(1,)]

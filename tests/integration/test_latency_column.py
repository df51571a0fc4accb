"""A decision's end-to-end latency is a column of its row: the dashboard's percentiles read it instead of
decoding every body of the window; a log created before the column gets it when opened for writing, and
its older decisions still count, read from their bodies. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from service.adapters.store import StoreLog, open_log
from service.domain.stats import WindowStats
from tests.conftest import sql
from tests.integration.test_decision_log_store import append_all, decision

DAY = ("2026-11-21T00:00:00.000000+00:00", "2026-11-22T00:00:00.000000+00:00")


def percentiles(stats: WindowStats) -> tuple[object, ...]:
    return (stats.decisions, stats.latency_p50_ms, stats.latency_p90_ms, stats.latency_p99_ms)


def test_each_decision_row_holds_its_latency_and_the_percentiles_read_it(log: StoreLog, log_db: str) -> None:
    append_all(log, [decision(n, latency_ms={"total": float(10 * (n + 1)), "rules": 1.0}) for n in range(10)])
    assert sql(log_db, "SELECT latency_ms FROM log_entries ORDER BY seq") == [(10.0 * (n + 1),) for n in range(10)]
    # the column, not the body: a value only the column holds moves the percentiles
    sql(log_db, "UPDATE log_entries SET latency_ms = 1000.0 WHERE seq = 1")
    stats = asyncio.run(log.statistics.window_stats(*DAY))
    assert percentiles(stats) == (10, 60.0, 100.0, 1000.0)


def test_a_log_created_before_the_column_gets_it_and_its_older_decisions_still_count(log_db: str) -> None:
    older = open_log(log_db, "replica-a")
    append_all(older, [decision(n, latency_ms={"total": float(10 * (n + 1))}) for n in range(4)])
    older.close()
    sql(log_db, "ALTER TABLE log_entries DROP COLUMN latency_ms")  # as the previous release created it

    log = open_log(log_db, "replica-a")
    try:
        assert sql(log_db, "SELECT seq, latency_ms FROM log_entries ORDER BY seq") == [(n, None) for n in range(1, 5)]
        append_all(log, [decision(n, latency_ms={"total": float(10 * (n + 1))}) for n in range(4, 10)])
        stats = asyncio.run(log.statistics.window_stats(*DAY))
    finally:
        log.close()
    assert sql(log_db, "SELECT COUNT(latency_ms) FROM log_entries") == [(6,)]
    assert percentiles(stats) == (10, 50.0, 90.0, 100.0)

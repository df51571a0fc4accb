"""The decision log's health: failures counted by cause, error lines rate-limited per cause, ok again
after a commit; the cause of a driver error; the timeouts every PostgreSQL connection carries."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from service.adapters.store.dialect import Dialect, PostgresDialect, Timeouts
from service.adapters.store.health import Health


def test_failures_are_counted_by_cause_and_logged_once_per_cause_until_the_interval_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health("sqlite:x.db", log_every_s=3600)
    with caplog.at_level(logging.WARNING, logger="opsgate.log"):
        for _ in range(3):
            health.failed("disk_full", "database or disk is full", 1)
        health.failed("read_only", "attempt to write a readonly database", 2)
        health.log_every_s = 0
        health.failed("disk_full", "database or disk is full", 1)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "decision log sqlite:x.db cannot commit (disk_full): database or disk is full",
        "decision log sqlite:x.db cannot commit (read_only): attempt to write a readonly database",
        "decision log sqlite:x.db cannot commit (disk_full): database or disk is full"
        " (2 more failures of this cause since the last line)",
    ]
    state = health.state()
    assert (state.ok, state.cause, state.errors) == (False, "disk_full", {"disk_full": 4, "read_only": 2})


def test_a_commit_makes_the_log_ok_again_and_keeps_the_counts(caplog: pytest.LogCaptureFixture) -> None:
    health = Health("sqlite:x.db")
    health.committed()
    assert health.state().ok
    health.failed("io_error", "disk I/O error", 1)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="opsgate.log"):
        health.committed()
    assert health.state() == type(health.state())(True, None, None, {"io_error": 1})
    assert [record.levelname for record in caplog.records] == ["WARNING"]


@pytest.mark.parametrize(
    ("errorname", "cause"),
    [
        ("SQLITE_READONLY", "read_only"),
        ("SQLITE_READONLY_DBMOVED", "read_only"),
        ("SQLITE_FULL", "disk_full"),
        ("SQLITE_IOERR_WRITE", "io_error"),
        ("SQLITE_BUSY", "locked"),
        ("SQLITE_INTERRUPT", "timeout"),
        ("SQLITE_CONSTRAINT_UNIQUE", "error"),
    ],
)
def test_a_sqlite_error_is_counted_under_its_cause(errorname: str, cause: str) -> None:
    error = sqlite3.OperationalError("failed")
    error.sqlite_errorname = errorname
    assert Dialect("x.db").cause(error) == cause


def test_every_postgresql_connection_carries_keepalives_and_timeouts_unless_the_url_sets_them() -> None:
    import psycopg

    timeouts = Timeouts(connect_s=2, statement_s=3, write_s=1.5, keepalive_s=4)
    params = psycopg.conninfo.conninfo_to_dict(PostgresDialect("postgresql://h/db", timeouts)._conninfo(""))
    assert params == {
        "host": "h", "dbname": "db", "connect_timeout": "2", "keepalives": "1", "keepalives_idle": "4",
        "keepalives_interval": "4", "keepalives_count": "3", "tcp_user_timeout": "16000",
        "options": "-c statement_timeout=3000 -c idle_in_transaction_session_timeout=1500",
    }  # fmt: skip
    url = "postgresql://h/db?keepalives_idle=60&options=-csearch_path%3Ds%20-cstatement_timeout%3D9s"
    params = psycopg.conninfo.conninfo_to_dict(PostgresDialect(url, timeouts)._conninfo("-c x=1"))
    assert params["keepalives_idle"] == "60"
    assert params["options"] == (
        "-csearch_path=s -cstatement_timeout=9s -c idle_in_transaction_session_timeout=1500 -c x=1"
    )

"""The decision log's PostgreSQL connections, on the real server: each carries the timeouts and TCP
keepalives it was opened with; a read stuck past its deadline has its connection broken and fails
with DecisionLogError instead of blocking its thread."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from service.adapters.store import Timeouts, open_log
from service.errors import DecisionLogError


def test_a_postgresql_log_connection_has_its_timeouts_and_tcp_keepalives(pg_url: str) -> None:
    log = open_log(pg_url, "w", timeouts=Timeouts(connect_s=2, statement_s=3, write_s=1.5, keepalive_s=7))

    def seen(connection: Any) -> tuple[Any, ...]:
        sock = socket.socket(fileno=connection.fileno())
        try:
            keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        finally:
            sock.detach()  # the connection's own descriptor: not closed here
        settings = connection.execute("SHOW statement_timeout").fetchone()[0]
        idle_tx = connection.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0]
        return keepalive, idle, settings, idle_tx

    try:
        assert asyncio.run(log.database.read(seen)) == (1, 7, "3s", "1500ms")
    finally:
        log.close()


def test_a_read_past_its_deadline_fails_instead_of_blocking(pg_url: str) -> None:
    # the server's statement_timeout is set far beyond the read deadline, so only the watchdog can end it
    url = pg_url + "%20-cstatement_timeout%3D60s"
    log = open_log(url, "w", timeouts=Timeouts(statement_s=1))
    try:
        with pytest.raises(DecisionLogError):
            asyncio.run(log.database.read(lambda connection: connection.execute("SELECT pg_sleep(5)").fetchall()))
        assert asyncio.run(log.database.read(lambda connection: connection.execute("SELECT 1").fetchone())) == (1,)
    finally:
        log.close()


def test_a_killed_backend_is_replaced_and_the_write_retried_at_once(pg_url: str) -> None:
    import psycopg

    log = open_log(pg_url, "w", timeouts=Timeouts(connect_s=2, write_s=2))

    async def run() -> tuple[Any, Any]:
        pid = await log.database.write(lambda connection: connection.execute("SELECT pg_backend_pid()").fetchone()[0])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        after = await log.database.write(lambda connection: connection.execute("SELECT pg_backend_pid()").fetchone()[0])
        return pid, after

    try:
        before, after = asyncio.run(run())
        assert after != before
        assert log.health().ok and log.health().errors == {}
    finally:
        log.close()

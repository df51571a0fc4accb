"""Signed-out sessions in the decision log's database (service.adapters.store), on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time

from service.adapters.store import StoreLog, open_log
from service.adapters.store.sessions import PRUNE_MARGIN_S
from tests.conftest import sql

HOUR = 3600


def test_a_revoked_sid_is_found_and_others_are_not_even_when_revoked_twice(log: StoreLog, log_db: str) -> None:
    until = int(time.time()) + HOUR

    async def scenario() -> list[bool]:
        await log.sessions.revoke_session("sid-out", until)
        await log.sessions.revoke_session("sid-out", until)
        return [await log.sessions.session_revoked("sid-out"), await log.sessions.session_revoked("sid-in")]

    assert asyncio.run(scenario()) == [True, False]
    assert sql(log_db, "SELECT sid, expires_at FROM revoked_sessions") == [("sid-out", until)]


def test_a_revocation_holds_for_another_worker_and_after_a_restart(log: StoreLog, log_db: str) -> None:
    asyncio.run(log.sessions.revoke_session("sid-out", int(time.time()) + HOUR))
    other = open_log(log_db, "replica-a-w2")
    try:
        assert asyncio.run(other.sessions.session_revoked("sid-out")) is True
    finally:
        other.close()
    log.close()
    restarted = open_log(log_db, "replica-a")
    try:
        assert asyncio.run(restarted.sessions.session_revoked("sid-out")) is True
        assert asyncio.run(restarted.sessions.session_revoked("sid-other")) is False
    finally:
        restarted.close()


def test_rows_past_their_expiry_by_the_margin_are_deleted_at_the_next_sign_out(log: StoreLog, log_db: str) -> None:
    now = int(time.time())

    async def scenario() -> None:
        sessions = log.sessions
        await sessions.revoke_session("expired-long-ago", now - HOUR)
        await sessions.revoke_session("expired-past-the-margin", now - PRUNE_MARGIN_S - 10)
        await sessions.revoke_session("expired-within-the-margin", now - 2)  # a replica's clock may still be before it
        await sessions.revoke_session("still-live", now + HOUR)
        await sessions.revoke_session("newest", now + 2 * HOUR)

    asyncio.run(scenario())
    rows = sql(log_db, "SELECT sid FROM revoked_sessions ORDER BY sid")
    assert rows == [("expired-within-the-margin",), ("newest",), ("still-live",)]

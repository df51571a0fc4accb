"""Signed-out reviewer sessions, kept in the decision log's database so every worker and every
later start of the service refuses them."""

from __future__ import annotations

import time
from typing import Any

from service.adapters.store.database import Database

#: How long a signed-out session's row outlives its expiry: replicas' clocks may disagree this much.
PRUNE_MARGIN_S = 300


class Sessions:
    """The revoked sessions table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def revoke_session(self, sid: str, expires: int) -> None:
        """Refuse session ``sid`` until ``expires`` (epoch seconds).  The rows more than
        PRUNE_MARGIN_S past their expiry are deleted in the same transaction: the table holds the
        sign-outs of one session TTL, and a replica whose clock runs behind still finds its rows."""
        at = int(time.time())
        await self.database.write(lambda c: self._revoke(c, sid, expires, at))

    def _revoke(self, connection: Any, sid: str, expires: int, at: int) -> None:
        sql = self.database.dialect.sql
        connection.execute(sql("DELETE FROM revoked_sessions WHERE expires_at < ?"), (at - PRUNE_MARGIN_S,))
        connection.execute(
            sql("INSERT INTO revoked_sessions (sid, expires_at) VALUES (?, ?) ON CONFLICT (sid) DO NOTHING"),
            (sid, expires),
        )

    async def session_revoked(self, sid: str) -> bool:
        """Was session ``sid`` signed out (by any process on this log)?"""
        query = self.database.dialect.sql("SELECT 1 FROM revoked_sessions WHERE sid = ?")
        return await self.database.read(lambda c: c.execute(query, (sid,)).fetchone() is not None)

"""Signed-out reviewer sessions, refused until the cookie would have expired anyway.

The session cookie is signed, not stored, so deleting it in the browser does not end a copy
of it.  Signing out therefore records the session id in the decision log's database, which
every worker and every later start of the service reads.  A sid found revoked stays revoked
until its expiry, so this process remembers the ones it has seen and asks the store only
about the others: a sign-out in another worker counts from its very next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.ports.log import SessionStore


class Revocations:
    """The revoked sessions: the store's, and the ones this process has already seen."""

    def __init__(self, store: SessionStore | None = None, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._known: dict[str, int] = {}

    def attach(self, store: SessionStore) -> None:
        """Use ``store`` from now on (the decision log, once the service has opened it)."""
        self._store = store

    async def revoke(self, sid: str, expires: int) -> None:
        """Refuse session ``sid`` until ``expires`` (epoch seconds), here and wherever the store is read.

        This process refuses it from now on even when the store cannot be written (which raises)."""
        if sid in self._known:
            return
        self._remember(sid, expires)
        if self._store is not None:
            await self._store.revoke_session(sid, expires)

    async def revoked(self, sid: str, expires: int) -> bool:
        """Was ``sid`` revoked, here or by any process that shares the store?"""
        if sid in self._known:
            return True
        if self._store is None or not await self._store.session_revoked(sid):
            return False
        self._remember(sid, expires)
        return True

    def _remember(self, sid: str, expires: int) -> None:
        now = self._clock()
        self._known = {known: until for known, until in self._known.items() if until >= now}
        self._known[sid] = expires

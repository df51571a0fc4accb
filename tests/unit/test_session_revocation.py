"""Signing out revokes the session (service/auth/revocation.py, service/auth/sessions.py), over a fake store."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.testing import TestClient

from service.auth.keys import ApiKey
from service.auth.revocation import Revocations
from service.auth.sessions import SESSION_COOKIE, Auth
from service.errors import DecisionLogError, LoginRequired
from service.http import guard

TOKEN = "og_reader-token"
READER = ApiKey("reader", frozenset({"audit"}), hashlib.sha256(TOKEN.encode()).hexdigest())


class FakeStore:
    """The revocation port over a dict, counting the questions asked of it."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.asked: list[str] = []

    async def revoke_session(self, sid: str, expires: int) -> None:
        self.rows[sid] = expires

    async def session_revoked(self, sid: str) -> bool:
        self.asked.append(sid)
        return sid in self.rows


def worker(store: FakeStore | None) -> Auth:
    """One serving process's Auth: the same secret in every worker, and the shared store."""
    return Auth((READER,), b"s" * 32, secure_cookie=False, session_ttl_s=3600, revocations=Revocations(store))


def test_a_signed_out_cookie_is_refused_and_another_session_of_the_same_key_is_not() -> None:
    keys = worker(FakeStore())
    cookie, other = keys.new_session(READER), keys.new_session(READER)
    session = keys.session(cookie)
    assert session is not None and asyncio.run(keys.signed_in(cookie)) == session
    asyncio.run(keys.sign_out(session))
    assert asyncio.run(keys.signed_in(cookie)) is None
    assert keys.session(cookie) == session  # the signature alone is still good: only the store says no
    assert asyncio.run(keys.signed_in(other)) is not None


def test_a_sign_out_in_one_worker_is_refused_by_another_from_its_next_request() -> None:
    store = FakeStore()
    first, second = worker(store), worker(store)
    cookie = first.new_session(READER)
    assert asyncio.run(second.signed_in(cookie)) is not None
    session = first.session(cookie)
    assert session is not None
    asyncio.run(first.sign_out(session))
    assert store.rows == {session.sid: session.expires}
    assert asyncio.run(second.signed_in(cookie)) is None


def test_a_sid_found_revoked_is_not_asked_again_but_a_live_one_is_asked_every_time() -> None:
    store = FakeStore()
    keys = worker(store)
    live, gone = keys.new_session(READER), worker(store).new_session(READER)
    alive, revoked = keys.session(live), keys.session(gone)
    assert alive is not None and revoked is not None
    store.rows[revoked.sid] = revoked.expires  # signed out by another worker
    for _ in range(3):
        assert asyncio.run(keys.signed_in(live)) is not None
        assert asyncio.run(keys.signed_in(gone)) is None
    assert store.asked == [alive.sid, revoked.sid, alive.sid, alive.sid]


def test_an_unsigned_or_altered_cookie_never_reaches_the_store() -> None:
    store = FakeStore()
    keys = worker(store)
    body, _, signature = keys.new_session(READER).partition(".")
    for cookie in (None, "", body, f"{body}.{signature[::-1]}", f"{body}x.{signature}"):
        assert asyncio.run(keys.signed_in(cookie)) is None
    assert store.asked == []


def test_remembered_sids_are_forgotten_once_their_sessions_have_expired() -> None:
    clock = [1000.0]
    store = FakeStore()
    revocations = Revocations(store, clock=lambda: clock[0])
    asyncio.run(revocations.revoke("early", 1100))
    asyncio.run(revocations.revoke("late", 5000))
    clock[0] = 1200.0
    asyncio.run(revocations.revoke("next", 6000))
    store.rows.clear()  # what only the memory still knows
    assert [asyncio.run(revocations.revoked(sid, 9999)) for sid in ("early", "late", "next")] == [False, True, True]


class BrokenStore(FakeStore):
    """A store whose database is down: every write fails."""

    async def revoke_session(self, sid: str, expires: int) -> None:
        raise DecisionLogError("decision log unavailable")


def test_a_sign_out_the_store_cannot_record_still_holds_in_this_process() -> None:
    keys = worker(BrokenStore())
    cookie = keys.new_session(READER)
    session = keys.session(cookie)
    assert session is not None
    with pytest.raises(DecisionLogError):
        asyncio.run(keys.sign_out(session))
    assert asyncio.run(keys.signed_in(cookie)) is None


def test_signing_out_a_session_already_revoked_here_does_not_write_again() -> None:
    store = FakeStore()
    keys = worker(store)
    session = keys.session(keys.new_session(READER))
    assert session is not None
    asyncio.run(keys.sign_out(session))
    store.rows.clear()
    asyncio.run(keys.sign_out(session))
    assert store.rows == {}


def test_without_a_store_a_sign_out_holds_in_this_process() -> None:
    keys = worker(None)
    cookie = keys.new_session(READER)
    session = keys.session(cookie)
    assert session is not None
    asyncio.run(keys.sign_out(session))
    assert asyncio.run(keys.signed_in(cookie)) is None


def to_sign_in(_: Request[Any, Any, Any], error: LoginRequired) -> Response[str]:
    return Response("sign in", status_code=error.status)


@get("/ui/page", opt={**guard.roles("audit"), "session": True})
async def page() -> str:
    return "page"


def test_a_bearer_key_on_a_page_never_asks_the_store_and_a_revoked_cookie_is_sent_to_sign_in() -> None:
    store = FakeStore()
    keys = worker(store)
    cookie = keys.new_session(READER)
    app = Litestar(
        [page], state=State({"auth": keys}), guards=[guard.guard], exception_handlers={LoginRequired: to_sign_in}
    )
    with TestClient(app) as client:
        assert client.get("/ui/page", headers={"Authorization": f"Bearer {TOKEN}"}).text == "page"
        assert store.asked == []
        assert client.get("/ui/page", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}).text == "page"
        session = keys.session(cookie)
        assert session is not None
        store.rows[session.sid] = session.expires
        assert client.get("/ui/page", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}).text == "sign in"
        assert store.asked == [session.sid, session.sid]

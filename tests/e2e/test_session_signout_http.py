"""Signing out of the reviewer pages on a real ``opsgate serve``: a kept copy of the cookie is refused afterwards,
by the same server, by its other workers, and after a restart on the same log."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable

import httpx

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server

KEY = "og_test-reviewer-0123456789abcdefghijklmnop"
SECRET = "signout-test-secret-0123456789abcdef"  # the same in every start: only the revocation refuses a cookie
ENV = {
    "OPSGATE_API_KEYS": f"reviewer:audit:{hashlib.sha256(KEY.encode()).hexdigest()}",
    "OPSGATE_SESSION_SECRET": SECRET,
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(server: Server) -> str:
    """The session cookie's value, from the sign-in form as a browser posts it."""
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/ui/login")
        token = TOKEN.search(form.text)
        assert token is not None, form.text
        answer = browser.post("/ui/login", data={"csrf_token": token[1], "next": "/ui/decisions", "key": KEY})
        assert (answer.status_code, answer.headers["Location"]) == (303, "/ui/decisions")
        return answer.cookies["opsgate_session"]


def page(server: Server, cookie: str) -> httpx.Response:
    """GET /ui/decisions with only ``cookie``, on a new connection (any worker may take it)."""
    return httpx.get(f"{server.url}/ui/decisions", headers={"Cookie": f"opsgate_session={cookie}"}, timeout=10)


def signed_in(server: Server, cookie: str) -> bool:
    answer = page(server, cookie)
    if answer.status_code == 303:
        assert answer.headers["Location"] == "/ui/login?next=/ui/decisions"
        return False
    assert answer.status_code == 200, answer.text
    return True


def sign_out(server: Server, cookie: str) -> None:
    token = TOKEN.search(page(server, cookie).text)  # the logout form's CSRF token
    assert token is not None
    answer = httpx.post(f"{server.url}/ui/logout", headers={"Cookie": f"opsgate_session={cookie}"},
                        data={"csrf_token": token[1]}, timeout=10)  # fmt: skip
    assert (answer.status_code, answer.headers["Location"]) == (303, "/ui/login")
    assert 'opsgate_session=""' in answer.headers["Set-Cookie"]  # deleted in the browser as well


def test_a_kept_copy_of_a_signed_out_cookie_is_sent_to_sign_in_and_other_sessions_go_on(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(RULES_DIR, REGO_DIR, **ENV)
    kept, other = sign_in(server), sign_in(server)
    assert signed_in(server, kept) and signed_in(server, other)
    sign_out(server, kept)
    assert not signed_in(server, kept)
    assert signed_in(server, other)
    bearer = httpx.get(f"{server.url}/ui/decisions", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert bearer.status_code == 200


def test_a_signed_out_cookie_stays_refused_after_a_restart_on_the_same_log(
    start_server: Callable[..., Server], log_db: str
) -> None:
    first = start_server(RULES_DIR, REGO_DIR, log_db, **ENV)
    kept, other = sign_in(first), sign_in(first)
    sign_out(first, kept)
    first.stop()
    restarted = start_server(RULES_DIR, REGO_DIR, log_db, **ENV)
    assert signed_in(restarted, other)  # the same secret: the cookies' signatures still hold
    assert not signed_in(restarted, kept)


def test_a_cookie_signed_out_in_one_worker_is_refused_by_every_worker(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(RULES_DIR, REGO_DIR, OPSGATE_WORKERS="2", **ENV)
    kept = sign_in(server)
    with httpx.Client(base_url=server.url, timeout=10) as connection:  # one connection stays on one worker
        signed_out_by = connection.get("/ready").json()["decision_log"]["writer"]
        token = TOKEN.search(connection.get("/ui/decisions", headers={"Cookie": f"opsgate_session={kept}"}).text)
        assert token is not None
        answer = connection.post("/ui/logout", headers={"Cookie": f"opsgate_session={kept}"},
                                 data={"csrf_token": token[1]})  # fmt: skip
        assert answer.status_code == 303
    # new connections until both workers have answered the kept cookie (a worker still starting takes none)
    answers: dict[str, set[int]] = {}
    deadline = time.monotonic() + 30
    while len(answers) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=server.url, timeout=10) as connection:
            writer = connection.get("/ready").json()["decision_log"]["writer"]
            status = connection.get("/ui/decisions", headers={"Cookie": f"opsgate_session={kept}"}).status_code
        answers.setdefault(writer, set()).add(status)
    assert len(answers) == 2 and signed_out_by in answers
    assert answers == {writer: {303} for writer in answers}  # 303 to the sign-in form, the other worker too

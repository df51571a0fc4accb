"""serve --workers N: the workers sign the reviewer pages' sessions with one secret."""

from __future__ import annotations

from service.auth.keys import ApiKey
from service.auth.sessions import from_settings
from service.cli.workers import Supervisor
from service.settings import Settings

DIGEST = "a" * 64


def test_workers_without_a_session_secret_share_one_so_a_session_holds_at_each() -> None:
    settings = Settings(api_keys=f"alice:audit:{DIGEST}", writer_id="host", workers=2)
    supervisor = Supervisor(settings, from_settings, lambda _auth, _sock: None)
    first, second = supervisor.apps  # what each worker's app authenticates with
    cookie = first.new_session(ApiKey("alice", frozenset({"audit"}), DIGEST))
    session = second.session(cookie)
    assert session is not None and session.key.name == "alice"
    assert first.csrf_token(session) == second.csrf_token(session)


def test_a_configured_session_secret_is_kept() -> None:
    secret = "s" * 40
    supervisor = Supervisor(
        Settings(session_secret=secret, writer_id="host", workers=2), lambda s: s, lambda _settings, _sock: None
    )
    assert [s.session_secret for s in supervisor.apps] == [secret, secret]
    assert [s.writer_id for s in supervisor.apps] == ["host-w0", "host-w1"]

"""API keys, sessions and CSRF tokens (service/auth/keys.py, service/auth/sessions.py), without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service.auth import sessions
from service.auth.keys import ApiKey, load_keys
from service.auth.sessions import Auth
from service.cli.keys import print_new_key
from service.errors import CsrfFailed, OpsgateError
from service.settings import Settings

HASH_ONE = hashlib.sha256(b"k-one").hexdigest()
HASH_TWO = hashlib.sha256(b"k-two").hexdigest()


def keys_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    return path


def ring(*keys: ApiKey, ttl: float = 3600.0, secret: bytes = b"s" * 32) -> Auth:
    return Auth(keys, secret, secure_cookie=False, session_ttl_s=ttl)


READER = ApiKey("reader", frozenset({"audit"}), HASH_ONE)
BOSS = ApiKey("boss", frozenset({"admin"}), HASH_TWO)


def test_keys_file_entries_become_keys_with_their_roles(tmp_path: Path) -> None:
    path = keys_file(
        tmp_path,
        f"keys:\n  - name: ci-deployer\n    roles: [decide, approve]\n    sha256: {HASH_ONE.upper()}\n"
        f"  - name: alice@example.org\n    roles: [audit]\n    sha256: {HASH_TWO}\n",
    )
    assert load_keys(path, None) == (
        ApiKey("ci-deployer", frozenset({"decide", "approve"}), HASH_ONE),
        ApiKey("alice@example.org", frozenset({"audit"}), HASH_TWO),
    )


def test_environment_entries_are_name_roles_hash_separated_by_commas() -> None:
    text = f" svc:decide:{HASH_ONE} , auditor:audit+approve:{HASH_TWO},"
    assert load_keys(None, text) == (
        ApiKey("svc", frozenset({"decide"}), HASH_ONE),
        ApiKey("auditor", frozenset({"audit", "approve"}), HASH_TWO),
    )


def test_file_and_environment_keys_add_up(tmp_path: Path) -> None:
    path = keys_file(tmp_path, f"keys:\n  - {{name: a, roles: [author], sha256: {HASH_ONE}}}\n")
    assert [key.name for key in load_keys(path, f"b:admin:{HASH_TWO}")] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            f"keys:\n  - {{name: ok, roles: [audit], sha256: {HASH_ONE}}}\n"
            f"  - {{name: ci, roles: [decide, deploy], sha256: {HASH_TWO}}}\n",
            "API keys file {path}: key 2 ('ci'): unknown role(s) 'deploy'; "
            "the roles are decide, approve, author, audit, admin",
            id="unknown-role",
        ),
        pytest.param(
            f"keys:\n  - {{name: ci, roles: [], sha256: {HASH_ONE}}}\n",
            "API keys file {path}: key 1 ('ci'): no role; the roles are decide, approve, author, audit, admin",
            id="no-role",
        ),
        pytest.param(
            "keys:\n  - {name: ci, roles: [decide], sha256: not-a-hash}\n",
            "API keys file {path}: key 1 ('ci'): sha256 must be 64 hexadecimal digits (see `opsgate keys new`)",
            id="bad-hash",
        ),
        pytest.param(
            f"keys:\n  - {{name: 'a b', roles: [decide], sha256: {HASH_ONE}}}\n",
            "API keys file {path}: key 1: name 'a b' must be 1-64 of A-Z a-z 0-9 _ . @ - "
            "(not starting with one of _.@-)",
            id="bad-name",
        ),
        pytest.param(
            f"keys:\n  - {{name: ci, roles: [decide], sha256: {HASH_ONE}, key: plain}}\n",
            "API keys file {path}: Object contains unknown field `key` - at `$.keys[0]` "
            "(expected keys: [{{name, roles, sha256}}])",
            id="unknown-field",
        ),
    ],
)
def test_a_bad_keys_file_entry_is_named_in_the_error(tmp_path: Path, text: str, message: str) -> None:
    path = keys_file(tmp_path, text)
    with pytest.raises(OpsgateError) as raised:
        load_keys(path, None)
    assert raised.value.message == message.format(path=path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            f"a:decide:{HASH_ONE},b:{HASH_TWO}",
            "OPSGATE_API_KEYS: entry 2: expected name:role+role:sha256, got 2 field(s)",
            id="missing-field",
        ),
        pytest.param(
            f"a:decide+root:{HASH_ONE}",
            "OPSGATE_API_KEYS: entry 1 ('a'): unknown role(s) 'root'; "
            "the roles are decide, approve, author, audit, admin",
            id="unknown-role",
        ),
        pytest.param(
            f"a:decide:{HASH_ONE},a:audit:{HASH_TWO}",
            "API key 'a': name is configured more than once",
            id="same-name",
        ),
        pytest.param(
            f"a:decide:{HASH_ONE},b:audit:{HASH_ONE}",
            "API key 'b': hash (the same key twice) is configured more than once",
            id="same-hash",
        ),
    ],
)
def test_a_bad_environment_entry_is_named_in_the_error(text: str, message: str) -> None:
    with pytest.raises(OpsgateError) as raised:
        load_keys(None, text)
    assert raised.value.message == message


def test_a_keys_configuration_without_a_key_is_an_error_not_open_mode(tmp_path: Path) -> None:
    for file, env in ((keys_file(tmp_path, "keys: []\n"), None), (None, " , ")):
        with pytest.raises(OpsgateError) as raised:
            load_keys(file, env)
        assert raised.value.message == (
            "API keys are configured (OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS) but hold no key"
        )
    assert load_keys(None, None) == ()


def test_a_key_is_found_by_its_hash_and_an_unknown_one_is_not() -> None:
    keys = ring(READER, BOSS)
    assert keys.authenticate("k-one") == READER
    assert keys.authenticate("k-two") == BOSS
    assert keys.authenticate("k-three") is None
    assert keys.authenticate(HASH_ONE) is None  # the hash itself is not a key


def test_admin_may_do_everything_and_other_roles_only_their_own() -> None:
    assert BOSS.may(("author",)) and BOSS.may(("decide",))
    assert READER.may(("audit",)) and READER.may(("approve", "audit"))
    assert not READER.may(("decide",))


def test_open_mode_is_no_key_and_ready_never_shows_hashes() -> None:
    assert ring().open
    assert ring().describe() == {"mode": "open", "keys": 0, "warning": "no API key configured: every endpoint is open"}
    assert ring(READER, BOSS).describe() == {"mode": "keys", "keys": 2}


def test_a_session_cookie_names_its_key_until_it_expires_or_is_altered() -> None:
    keys = ring(READER, BOSS)
    cookie = keys.new_session(READER)
    session = keys.session(cookie)
    assert session is not None and session.key == READER
    body, signature = cookie.split(".")
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]  # always differs from the real one
    assert keys.session(f"{body}.{altered}") is None
    assert keys.session(f"{body}x.{signature}") is None
    assert keys.session(body) is None
    assert keys.session(None) is None
    assert ring(READER, BOSS, secret=b"t" * 32).session(cookie) is None  # another secret
    assert ring(READER, ttl=-1).session(ring(READER, ttl=-1).new_session(READER)) is None  # expired


def test_a_session_ends_when_its_key_is_removed_or_replaced() -> None:
    cookie = ring(READER, BOSS).new_session(READER)
    assert ring(BOSS).session(cookie) is None
    replaced = ApiKey("reader", frozenset({"audit"}), hashlib.sha256(b"k-new").hexdigest())
    assert ring(replaced, BOSS).session(cookie) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    keys = ring(READER)
    first = keys.session(keys.new_session(READER))
    second = keys.session(keys.new_session(READER))
    assert first is not None and second is not None
    keys.check_token(keys.csrf_token(first), keys.csrf_token(first))
    for wrong in (keys.csrf_token(second), "", None, "x"):
        with pytest.raises(CsrfFailed) as raised:
            keys.check_token(keys.csrf_token(first), wrong)
        assert (raised.value.status, raised.value.code) == (403, "csrf_failed")


def test_require_auth_without_a_key_refuses_to_start() -> None:
    with pytest.raises(OpsgateError) as raised:
        sessions.from_settings(Settings(require_auth=True))
    assert raised.value.message == (
        "--require-auth (OPSGATE_REQUIRE_AUTH) is on but no API key is configured: "
        "set OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS (`opsgate keys new` makes a key)"
    )
    assert not sessions.from_settings(Settings(require_auth=True, api_keys=f"a:audit:{HASH_ONE}")).open


def test_a_short_session_secret_refuses_to_start() -> None:
    with pytest.raises(OpsgateError) as raised:
        sessions.from_settings(Settings(api_keys=f"a:audit:{HASH_ONE}", session_secret="short"))
    assert raised.value.message == "OPSGATE_SESSION_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)"


def test_keys_new_prints_a_key_whose_hash_is_the_printed_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_new_key("ci", "decide, approve") == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "New API key 'ci' (roles: decide, approve). It is shown only this once; opsgate keeps only its SHA-256."
    )
    token = lines[2].strip()
    assert token.startswith("og_") and len(token) == 3 + 43  # 32 random bytes, base64url
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert lines[4:9] == [
        "Add it to the keys file (OPSGATE_API_KEYS_FILE, under `keys:`):",
        "",
        "  - name: ci",
        "    roles: [decide, approve]",
        f"    sha256: {digest}",
    ]
    assert lines[-1] == f"  ci:decide+approve:{digest}"
    assert ring(*load_keys(None, lines[-1].strip())).authenticate(token) == ApiKey(
        "ci", frozenset({"decide", "approve"}), digest
    )


def test_keys_new_refuses_an_unknown_role() -> None:
    with pytest.raises(OpsgateError) as raised:
        print_new_key("ci", "decide,root")
    assert raised.value.message == (
        "opsgate keys new ('ci'): unknown role(s) 'root'; the roles are decide, approve, author, audit, admin"
    )

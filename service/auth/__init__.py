"""API keys with roles, the guard every route passes, and the reviewer pages' signed session.

Keys are random tokens of 256 bits, so opsgate keeps only their SHA-256: a leaked
configuration does not give a key away, and a slow password hash would buy nothing.
A route says who may call it with ``opt={"roles": (...)}``; "admin" may call every route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import yaml
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from service.auth.revocation import Revocations
from service.errors import CsrfFailed, Forbidden, OpsgateError, Unauthorized
from service.settings import Settings

log = logging.getLogger("opsgate.auth")

ROLES = ("decide", "approve", "author", "audit", "admin")
KEY_PREFIX = "og_"
SESSION_COOKIE = "opsgate_session"
LOGIN_COOKIE = "opsgate_login"  # the login form's CSRF nonce, before any session exists
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

OPEN_MODE_WARNING = """
************************************************************************
*  opsgate runs in OPEN DEVELOPMENT MODE: no API key is configured,     *
*  so every endpoint answers anyone, with no authentication at all.     *
*  Configure keys (OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS, see       *
*  `opsgate keys new`) and start with --require-auth in production.     *
************************************************************************"""


class ApiKey(msgspec.Struct, frozen=True):
    name: str
    roles: frozenset[str]
    sha256: str

    def may(self, roles: Iterable[str]) -> bool:
        return "admin" in self.roles or not self.roles.isdisjoint(roles)


class _Entry(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    roles: list[str]
    sha256: str


class _KeysFile(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[_Entry]


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked(entry: _Entry, where: str) -> ApiKey:
    """``entry`` as a key, or a startup error naming ``where`` it is and what is wrong."""
    if not _NAME.fullmatch(entry.name):
        raise OpsgateError(
            f"{where}: name {entry.name!r} must be 1-64 of A-Z a-z 0-9 _ . @ - (not starting with one of _.@-)"
        )
    unknown = [role for role in entry.roles if role not in ROLES]
    if unknown or not entry.roles:
        wrong = f"unknown role(s) {', '.join(map(repr, unknown))}" if unknown else "no role"
        raise OpsgateError(f"{where} ({entry.name!r}): {wrong}; the roles are {', '.join(ROLES)}")
    digest = entry.sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise OpsgateError(f"{where} ({entry.name!r}): sha256 must be 64 hexadecimal digits (see `opsgate keys new`)")
    return ApiKey(entry.name, frozenset(entry.roles), digest)


def _from_file(path: Path) -> list[ApiKey]:
    try:
        keys = msgspec.convert(yaml.safe_load(path.read_text()), _KeysFile).keys
    except (msgspec.ValidationError, yaml.YAMLError) as error:
        raise OpsgateError(f"API keys file {path}: {error} (expected keys: [{{name, roles, sha256}}])") from None
    return [_checked(entry, f"API keys file {path}: key {n}") for n, entry in enumerate(keys, 1)]


def _from_env(text: str) -> list[ApiKey]:
    keys = []
    for n, item in enumerate((part.strip() for part in text.split(",") if part.strip()), 1):
        fields = item.split(":")
        if len(fields) != 3:
            raise OpsgateError(
                f"OPSGATE_API_KEYS: entry {n}: expected name:role+role:sha256, got {len(fields)} field(s)"
            )
        name, roles, digest = fields
        keys.append(_checked(_Entry(name, roles.split("+") if roles else [], digest), f"OPSGATE_API_KEYS: entry {n}"))
    return keys


def load_keys(file: Path | None, env: str | None) -> tuple[ApiKey, ...]:
    """The keys of the file and of the variable together; a name or hash given twice is an error."""
    keys = (_from_file(file) if file else []) + (_from_env(env) if env else [])
    if (file or env) and not keys:  # meant to be protected: never fall back to open mode silently
        raise OpsgateError("API keys are configured (OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS) but hold no key")
    for attribute in ("name", "sha256"):
        seen: set[str] = set()
        for key in keys:
            value = getattr(key, attribute)
            if value in seen:
                what = "name" if attribute == "name" else "hash (the same key twice)"
                raise OpsgateError(f"API key {key.name!r}: {what} is configured more than once")
            seen.add(value)
    return tuple(keys)


class Session(msgspec.Struct, frozen=True):
    key: ApiKey
    sid: str  # random per login: the CSRF token is derived from it
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Auth:
    """The configured keys and the session secret; open when there is no key."""

    def __init__(
        self,
        keys: tuple[ApiKey, ...],
        secret: bytes,
        *,
        secure_cookie: bool,
        session_ttl_s: float,
        revocations: Revocations | None = None,
    ) -> None:
        self.keys = keys
        self._secret = secret
        self.secure_cookie = secure_cookie
        self.session_ttl_s = session_ttl_s
        self.revocations = revocations or Revocations()

    @property
    def open(self) -> bool:
        return not self.keys

    def describe(self) -> dict[str, Any]:
        if self.open:
            return {"mode": "open", "keys": 0, "warning": "no API key configured: every endpoint is open"}
        return {"mode": "keys", "keys": len(self.keys)}

    def authenticate(self, token: str) -> ApiKey | None:
        """The key whose hash matches ``token``: every key is compared, in constant time, with no early exit."""
        digest = hash_key(token).encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256.encode()):
                found = key
        return found

    def _sign(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}\0{data}".encode(), hashlib.sha256).digest())

    def _fingerprint(self, key: ApiKey) -> str:
        """Ties a session to the key's hash: a key replaced under the same name ends its sessions."""
        return self._sign("key", key.sha256)[:22]

    def new_session(self, key: ApiKey) -> str:
        """The signed cookie value of a new session for ``key``."""
        payload = {"k": key.name, "f": self._fingerprint(key), "s": secrets.token_urlsafe(16),
                   "e": int(time.time() + self.session_ttl_s)}  # fmt: skip
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign('session', body)}"

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie value; None when unsigned, tampered with, expired, or its key is gone."""
        body, _, signature = (cookie or "").partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign("session", body).encode()):
            return None
        payload = json.loads(_unb64(body))
        key = next((k for k in self.keys if k.name == payload["k"]), None)
        if key is None or payload["f"] != self._fingerprint(key) or payload["e"] < time.time():
            return None
        return Session(key, payload["s"], payload["e"])

    async def signed_in(self, cookie: str | None) -> Session | None:
        """The session of a cookie value, as ``session``, and None as well when it was signed out."""
        found = self.session(cookie)
        if found is None or await self.revocations.revoked(found.sid, found.expires):
            return None
        return found

    async def sign_out(self, session: Session) -> None:
        """Refuse ``session``'s cookie from now on, in every worker and after a restart."""
        await self.revocations.revoke(session.sid, session.expires)

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf", session.sid)

    def login_token(self, nonce: str) -> str:
        """The login form's token, tied to the nonce cookie set with the form (none: no valid token)."""
        return self._sign("login", nonce) if nonce else secrets.token_urlsafe(32)

    def check_token(self, expected: str, given: object) -> None:
        if not isinstance(given, str) or not given or not hmac.compare_digest(expected.encode(), given.encode()):
            raise CsrfFailed("the form's CSRF token is missing or wrong: reload the page and try again")


def from_settings(settings: Settings) -> Auth:
    """The keys of ``settings``; an error when --require-auth finds none or the session secret is short."""
    keys = load_keys(settings.api_keys_file, settings.api_keys)
    if settings.require_auth and not keys:
        raise OpsgateError(
            "--require-auth (OPSGATE_REQUIRE_AUTH) is on but no API key is configured: "
            "set OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS (`opsgate keys new` makes a key)"
        )
    if settings.session_secret is not None and len(settings.session_secret) < 32:
        raise OpsgateError("OPSGATE_SESSION_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    secret = settings.session_secret.encode() if settings.session_secret else secrets.token_bytes(32)
    return Auth(keys, secret, secure_cookie=settings.session_cookie_secure, session_ttl_s=settings.session_ttl_s)


class LoginRequired(Unauthorized):
    """A reviewer page without a session: the pages answer it with a redirect to the login form."""


def auth_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Auth | None:
    auth: Auth | None = getattr(connection.app.state, "auth", None)
    return auth


def authenticated(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key the guard let through, if any."""
    key = connection.scope.get("user")
    return key if isinstance(key, ApiKey) else None


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session | None:
    """The session the guard let through (a reviewer page reached with the cookie), if any."""
    session = connection.scope.get("auth")
    return session if isinstance(session, Session) else None


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _refuse(connection: ASGIConnection[Any, Any, Any, Any], error: OpsgateError, who: str) -> OpsgateError:
    method = connection.scope.get("method", "")
    log.warning("%d %s: %s %s", error.status, who, method, connection.url.path)
    return error


def _by_key(auth: Auth, connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key of the Bearer token, None without one; an unknown token is refused."""
    token = _bearer(connection)
    if token is None:
        return None
    key = auth.authenticate(token)
    if key is None:
        raise _refuse(connection, Unauthorized("unknown API key"), "unknown key")
    return key


async def _by_session(auth: Auth, connection: ASGIConnection[Any, Any, Any, Any], session: bool) -> ApiKey:
    found = await auth.signed_in(connection.cookies.get(SESSION_COOKIE)) if session else None
    if found is not None:
        connection.scope["auth"] = found
        return found.key
    if session:
        raise _refuse(connection, LoginRequired("sign in with an API key"), "no key")
    raise _refuse(connection, Unauthorized("missing API key: send Authorization: Bearer <key>"), "no key")


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Let through a route without ``opt["roles"]``, anything in open mode, or a key holding one of the roles.

    Routes with ``opt["session"]`` (the reviewer pages) also take the session cookie; a form posted
    with it must carry the session's CSRF token.
    """
    roles: tuple[str, ...] = handler.opt.get("roles") or ()
    auth = auth_of(connection)
    if not roles or auth is None or auth.open:
        return
    # a Bearer key is checked first and alone: only a cookie's session may ask the store
    key = _by_key(auth, connection) or await _by_session(auth, connection, bool(handler.opt.get("session")))
    if not key.may(roles):
        needed = " or ".join((*roles, "admin"))
        error = Forbidden(f"API key {key.name!r} may not call this endpoint: it needs the role {needed}")
        raise _refuse(connection, error, f"key {key.name!r}")
    connection.scope["user"] = key
    found = session_of(connection)
    if found is not None and isinstance(connection, Request) and connection.method == "POST":
        form = await connection.form()
        auth.check_token(auth.csrf_token(found), form.get("csrf_token"))


def new_key(name: str, roles: list[str]) -> tuple[str, ApiKey]:
    """A fresh random key and its configuration entry (hash only); errors name what is wrong."""
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    return token, _checked(_Entry(name, roles, hash_key(token)), "opsgate keys new")


def print_new_key(name: str, roles_text: str) -> int:
    """``opsgate keys new``: print a key once, and the lines to paste into the configuration."""
    roles = [role.strip() for role in roles_text.split(",") if role.strip()]
    token, key = new_key(name, roles)
    listed = ", ".join(roles)
    print(f"New API key {name!r} (roles: {listed}). It is shown only this once; opsgate keeps only its SHA-256.\n")
    print(f"  {token}\n")
    print("Add it to the keys file (OPSGATE_API_KEYS_FILE, under `keys:`):\n")
    print(f"  - name: {name}\n    roles: [{listed}]\n    sha256: {key.sha256}\n")
    print("or as one comma-separated entry of OPSGATE_API_KEYS:\n")
    print(f"  {name}:{'+'.join(roles)}:{key.sha256}")
    return 0


def roles(*names: str) -> dict[str, Any]:
    """A route's ``opt``: the roles that may call it ("admin" always may)."""
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}")
    return {"roles": names}

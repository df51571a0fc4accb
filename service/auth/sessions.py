"""The reviewer pages' signed sessions: HMAC cookies, CSRF and login-form tokens, and sign-out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import msgspec

from service.auth.keys import ApiKey, hash_key, load_keys
from service.auth.revocation import Revocations
from service.errors import CsrfFailed, InvalidSettings
from service.settings import Settings

SESSION_COOKIE = "opsgate_session"
LOGIN_COOKIE = "opsgate_login"  # the login form's CSRF nonce, before any session exists


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
        raise InvalidSettings(
            "--require-auth (OPSGATE_REQUIRE_AUTH) is on but no API key is configured: "
            "set OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS (`opsgate keys new` makes a key)"
        )
    if settings.session_secret is not None and len(settings.session_secret) < 32:
        raise InvalidSettings("OPSGATE_SESSION_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    secret = settings.session_secret.encode() if settings.session_secret else secrets.token_bytes(32)
    return Auth(keys, secret, secure_cookie=settings.session_cookie_secure, session_ttl_s=settings.session_ttl_s)

"""API keys with roles: the configured keys (file and environment), their hashes, and new keys.

Keys are random tokens of 256 bits, so opsgate keeps only their SHA-256: a leaked
configuration does not give a key away, and a slow password hash would buy nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import msgspec
import yaml

from service.errors import InvalidApiKeys

ROLES = ("decide", "approve", "author", "audit", "admin")
KEY_PREFIX = "og_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        raise InvalidApiKeys(
            f"{where}: name {entry.name!r} must be 1-64 of A-Z a-z 0-9 _ . @ - (not starting with one of _.@-)"
        )
    unknown = [role for role in entry.roles if role not in ROLES]
    if unknown or not entry.roles:
        wrong = f"unknown role(s) {', '.join(map(repr, unknown))}" if unknown else "no role"
        raise InvalidApiKeys(f"{where} ({entry.name!r}): {wrong}; the roles are {', '.join(ROLES)}")
    digest = entry.sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidApiKeys(f"{where} ({entry.name!r}): sha256 must be 64 hexadecimal digits (see `opsgate keys new`)")
    return ApiKey(entry.name, frozenset(entry.roles), digest)


def _from_file(path: Path) -> list[ApiKey]:
    try:
        keys = msgspec.convert(yaml.safe_load(path.read_text()), _KeysFile).keys
    except (msgspec.ValidationError, yaml.YAMLError) as error:
        raise InvalidApiKeys(f"API keys file {path}: {error} (expected keys: [{{name, roles, sha256}}])") from None
    return [_checked(entry, f"API keys file {path}: key {n}") for n, entry in enumerate(keys, 1)]


def _from_env(text: str) -> list[ApiKey]:
    keys = []
    for n, item in enumerate((part.strip() for part in text.split(",") if part.strip()), 1):
        fields = item.split(":")
        if len(fields) != 3:
            raise InvalidApiKeys(
                f"OPSGATE_API_KEYS: entry {n}: expected name:role+role:sha256, got {len(fields)} field(s)"
            )
        name, roles, digest = fields
        keys.append(_checked(_Entry(name, roles.split("+") if roles else [], digest), f"OPSGATE_API_KEYS: entry {n}"))
    return keys


def load_keys(file: Path | None, env: str | None) -> tuple[ApiKey, ...]:
    """The keys of the file and of the variable together; a name or hash given twice is an error."""
    keys = (_from_file(file) if file else []) + (_from_env(env) if env else [])
    if (file or env) and not keys:  # meant to be protected: never fall back to open mode silently
        raise InvalidApiKeys("API keys are configured (OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS) but hold no key")
    for attribute in ("name", "sha256"):
        seen: set[str] = set()
        for key in keys:
            value = getattr(key, attribute)
            if value in seen:
                what = "name" if attribute == "name" else "hash (the same key twice)"
                raise InvalidApiKeys(f"API key {key.name!r}: {what} is configured more than once")
            seen.add(value)
    return tuple(keys)


def new_key(name: str, roles: list[str]) -> tuple[str, ApiKey]:
    """A fresh random key and its configuration entry (hash only); errors name what is wrong."""
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    return token, _checked(_Entry(name, roles, hash_key(token)), "opsgate keys new")

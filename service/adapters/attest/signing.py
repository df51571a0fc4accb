"""Ed25519 signing keys for checkpoints (the ``cryptography`` package): loaded from a PEM file or
an environment value, kept apart from the database; a key id names the public key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.domain.checkpoint import Checkpoint, message
from service.errors import InvalidSettings

_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public.public_bytes(*_RAW)).hexdigest()[:16]


class Signer:
    """Signs checkpoints with one Ed25519 private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._private.sign(data)).decode()


def _private_from(text: bytes, where: str) -> Ed25519PrivateKey:
    try:
        if b"-----BEGIN" in text:
            key = serialization.load_pem_private_key(text, password=None)
        else:  # the 32-byte seed, base64
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text.strip(), validate=True))
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidSettings(f"{where}: not an Ed25519 private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidSettings(f"{where}: not an Ed25519 private key")
    return key


def load_signer(key_file: Path | None, key_text: str | None) -> Signer | None:
    """The signer of the key in ``key_text`` (PEM, or the base64 seed; OPSGATE_SIGNING_KEY) or else in
    ``key_file`` (PEM); None when neither is configured.  InvalidSettings when it is not a key."""
    if key_text:
        return Signer(_private_from(key_text.encode(), "OPSGATE_SIGNING_KEY"))
    if key_file is None:
        return None
    try:
        return Signer(_private_from(key_file.read_bytes(), str(key_file)))
    except OSError as error:
        raise InvalidSettings(f"signing key {key_file}: {error.strerror}") from None


def generate(key_file: Path) -> Path:
    """A new private key at ``key_file`` (mode 0600) and its public key beside it (``.pub``); returns that."""
    private = Ed25519PrivateKey.generate()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    public = public_path(key_file)
    public.write_bytes(public_pem(private.public_key()))
    return public


def public_path(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".pub")


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path``; InvalidSettings otherwise."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise InvalidSettings(f"public key {path}: {error.strerror}") from None
    except ValueError as error:
        raise InvalidSettings(f"public key {path}: not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidSettings(f"public key {path}: not an Ed25519 key")
    return key


def signature_problem(public: Ed25519PublicKey, checkpoint: Checkpoint) -> str | None:
    """Why ``checkpoint``'s signature does not hold under ``public``, or None."""
    if checkpoint.key_id != key_id(public):
        return f"signed by key {checkpoint.key_id}, not by the given key {key_id(public)}"
    try:
        public.verify(base64.b64decode(checkpoint.signature, validate=True), message(checkpoint))
    except (InvalidSignature, binascii.Error, ValueError):
        return "its signature does not verify: the checkpoint was altered or not signed by this key"
    return None

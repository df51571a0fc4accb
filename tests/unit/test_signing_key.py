"""The checkpoint signing key from a file or from the environment's text (PEM or base64 seed)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.adapters.attest.signing import generate, load_signer
from service.errors import InvalidSettings

SEED = bytes(range(32))


def test_the_same_key_as_a_file_as_pem_text_or_as_a_base64_seed_has_one_key_id(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    (tmp_path / "k.pem").write_bytes(pem)
    from_file = load_signer(tmp_path / "k.pem", None)
    from_pem = load_signer(None, pem.decode())
    from_seed = load_signer(tmp_path / "ignored", base64.b64encode(SEED).decode())  # the text wins over the file
    assert from_file and from_pem and from_seed
    assert {from_file.key_id, from_pem.key_id, from_seed.key_id} == {from_file.key_id}
    assert len(from_file.key_id) == 16


def test_no_key_configured_means_no_signer() -> None:
    assert load_signer(None, None) is None


@pytest.mark.parametrize("text", ["not a key", base64.b64encode(b"short").decode()])
def test_text_that_is_not_an_ed25519_key_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(InvalidSettings, match="OPSGATE_SIGNING_KEY: not an Ed25519 private key"):
        load_signer(None, text)


def test_a_missing_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match=f"signing key {tmp_path / 'none.key'}: No such file"):
        load_signer(tmp_path / "none.key", None)


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    generate(tmp_path / "k")
    with pytest.raises(FileExistsError):
        generate(tmp_path / "k")

"""The ports of signed checkpoints: the key that signs, where checkpoints are kept, the chain read."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from service.domain.attest import Named
from service.domain.checkpoint import Checkpoint, VersionRow


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> str:
        """The base64 Ed25519 signature of ``data``."""


class CheckpointStore(Protocol):
    def write(self, checkpoint: Checkpoint) -> Path: ...

    def newest(self, writer: str, size: int) -> Checkpoint | None:
        """The newest checkpoint of ``writer`` covering at least ``size`` records."""

    def read(self) -> tuple[list[Named], list[str]]:
        """Every checkpoint kept, and a problem per file that is not one."""


class ChainReader(Protocol):
    async def hashes(self, writer: str, after: int, upto: int) -> list[str]:
        """The chain hashes of ``writer``'s records ``after < seq <= upto``, in seq order."""

    async def head(self, writer: str) -> int: ...

    async def version_rows(self) -> list[VersionRow]: ...

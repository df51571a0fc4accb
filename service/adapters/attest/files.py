"""The checkpoints directory: each checkpoint one JSON file, written atomically (tmp + rename), so a
reader or an exporter never sees half a file; read back for verification and proofs."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from service.domain.attest import Named
from service.domain.checkpoint import Checkpoint, file_name, name_part

_DECODE = msgspec.json.Decoder(Checkpoint)


class CheckpointFiles:
    """The checkpoint files of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, checkpoint: Checkpoint) -> Path:
        """Write ``checkpoint`` as a new file, durable and whole once this returns."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / file_name(checkpoint)
        temporary = self.directory / f".{target.name}.tmp"
        with open(temporary, "wb") as out:
            out.write(msgspec.json.format(msgspec.json.encode(checkpoint), indent=2) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        return target

    def newest(self, writer: str, size: int) -> Checkpoint | None:
        """The newest checkpoint of ``writer`` covering at least ``size`` records, found by the file names
        (time, writer, tree size) so that only that one file is read."""
        if not self.directory.is_dir():
            return None
        wanted = name_part(writer)
        for name in sorted(os.listdir(self.directory), reverse=True):
            named_writer, _, count = name.removesuffix(".json").partition("-")[2].rpartition("-")
            if named_writer != wanted or not count.isdigit() or int(count) < size or not name.endswith(".json"):
                continue
            try:
                checkpoint = _DECODE.decode((self.directory / name).read_bytes())
            except (OSError, msgspec.DecodeError):
                continue
            if checkpoint.writer == writer:
                return checkpoint
        return None

    def read(self) -> tuple[list[Named], list[str]]:
        """Every checkpoint in the directory, by name, and a problem per file that is not one."""
        found: list[Named] = []
        problems: list[str] = []
        if not self.directory.is_dir():
            return found, problems
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(Named(path.name, _DECODE.decode(path.read_bytes())))
            except (OSError, msgspec.DecodeError) as error:
                problems.append(f"checkpoint {path.name}: unreadable ({error})")
        return found, problems

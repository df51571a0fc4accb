"""``opsgate log export``: the messages the export sinks get, written to a file (JSON lines)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from service.adapters.store.exports import records_since
from service.cli.flags import arg, db_flag
from service.domain.export import encode, record_message
from service.domain.record import normalize_time
from service.settings import Settings, checkpoints_path
from service.usecases.export import checkpoint_messages

_EPOCH = "1970-01-01T00:00:00+00:00"


def add_parser(log_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = log_commands.add_parser(
        "export", help="write the log's records (each chain from --since on) and checkpoints as JSON lines"
    )
    db_flag(export)
    export.add_argument(
        "--since", type=arg(normalize_time, "an RFC 3339 time"), default=_EPOCH,
        help="each chain from its first record created at or after this time (default: from the start)",
    )  # fmt: skip
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="one message per line (default)")
    export.add_argument("--out", help="the file to write (default: standard output)")


def main(settings: Settings, since: str, out: str | None) -> int:
    """Write every record of each chain from ``since`` on, then every checkpoint file; a count on stderr."""
    records = 0
    with _output(out) as stream:
        for row in records_since(settings.db, since):
            stream.write(encode(record_message(row)) + b"\n")
            records += 1
        checkpoints = checkpoint_messages(checkpoints_path(settings))
        for message in checkpoints:
            stream.write(encode(message) + b"\n")
    print(f"exported {records} records and {len(checkpoints)} checkpoints", file=sys.stderr)
    return 0


@contextmanager
def _output(out: str | None) -> Iterator[IO[bytes]]:
    if out is None:
        yield sys.stdout.buffer
        return
    with open(out, "wb") as stream:
        yield stream

"""What the log's exporter sends: one message per record or checkpoint, and the check a consumer
runs on them.  Pure: no sink, no storage here.

A record's message carries its stored canonical ``body`` as text, with its ``writer``, ``seq``,
``prev_hash`` and ``hash``: a consumer recomputes ``chain_hash(prev_hash, body)`` and follows the
links per writer from the stream alone.  Delivery is at least once, so a message may come twice;
its ``(writer, seq)`` (the NATS message id) says which.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from service.domain.record import GENESIS, StoredRecord, chain_hash


class RecordMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="record"):
    writer: str
    seq: int
    prev_hash: str
    hash: str
    body: str  # the record's canonical JSON, exactly as hashed

    @property
    def message_id(self) -> str:
        return f"{self.writer}:{self.seq}"


class CheckpointMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="checkpoint"):
    name: str  # the checkpoint file's name: <UTC time>-<writer>-<tree size>.json
    body: str  # the file's content, as written

    @property
    def message_id(self) -> str:
        return f"checkpoint:{self.name}"


Message = RecordMessage | CheckpointMessage
_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)


def record_message(row: StoredRecord) -> RecordMessage:
    return RecordMessage(writer=row.writer, seq=row.seq, prev_hash=row.prev_hash, hash=row.hash, body=row.body)


def encode(message: Message) -> bytes:
    """One message as JSON (keys sorted), as every sink and ``opsgate log export`` write it."""
    return _ENCODER.encode(message)


def decode(data: bytes | str) -> Message:
    return _DECODER.decode(data)


class StreamReport(msgspec.Struct, frozen=True):
    """What a consumer learns from the messages it received."""

    records: dict[str, int]  # writer -> records verified (each counted once)
    first_seq: dict[str, int]  # writer -> the seq its verified run starts at (1: from the chain's start)
    duplicates: int
    checkpoints: int
    ok: bool
    error: str | None = None


def verify_stream(messages: Iterable[Message]) -> StreamReport:
    """Follow each writer's chain through ``messages`` in arrival order: each record's hash must be
    ``chain_hash(prev_hash, body)`` and link to the previous one; a repeat of a record already seen
    (same writer, seq and hash) is a duplicate of at-least-once delivery and skipped, and one with
    another hash is named (two chains under one writer id, or a forgery).  A writer's first message
    may start after seq 1 (an export ``--since``); at seq 1 it must link to GENESIS."""
    chains: dict[str, list[str]] = {}  # writer -> the hashes of its verified run, from first_seq on
    first: dict[str, int] = {}
    duplicates = checkpoints = 0
    for message in messages:
        if isinstance(message, CheckpointMessage):
            checkpoints += 1
            continue
        problem, repeat = _link(message, chains.get(message.writer, []), first.get(message.writer, message.seq))
        if problem is not None:
            return StreamReport(_counts(chains), first, duplicates, checkpoints, ok=False, error=problem)
        if repeat:
            duplicates += 1
            continue
        chains.setdefault(message.writer, []).append(message.hash)
        first.setdefault(message.writer, message.seq)
    return StreamReport(_counts(chains), first, duplicates, checkpoints, ok=True)


def _counts(chains: dict[str, list[str]]) -> dict[str, int]:
    return {writer: len(hashes) for writer, hashes in chains.items()}


def _link(message: RecordMessage, hashes: list[str], first: int) -> tuple[str | None, bool]:
    """(what is wrong with ``message`` after the run ``hashes`` starting at seq ``first``, whether
    it repeats a record already seen)."""
    where = f"writer {message.writer} seq {message.seq}"
    if chain_hash(message.prev_hash, message.body) != message.hash:
        return f"{where}: its hash does not match its body (altered)", False
    if not hashes:
        if message.seq == 1 and message.prev_hash != GENESIS:
            return f"{where}: the chain's first record does not link to GENESIS", False
        return None, False
    seq = first + len(hashes) - 1
    if message.seq <= seq:
        if message.seq >= first and hashes[message.seq - first] != message.hash:
            return f"{where}: two records (another hash than the one delivered before)", False
        return None, True  # before the run's start: not seen here, nothing to compare it with
    if message.seq != seq + 1:
        return f"{where}: after seq {seq}: records {seq + 1}..{message.seq - 1} are missing", False
    if message.prev_hash != hashes[-1]:
        return f"{where}: prev_hash does not link to seq {seq}'s hash", False
    return None, False

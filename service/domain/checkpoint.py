"""Signed checkpoints and inclusion proofs: their JSON form and the bytes a signature covers.  Pure.

A checkpoint (in the manner of RFC 9162's signed tree head) says: at ``time``, writer ``writer``'s
chain held ``tree_size`` records whose Merkle tree (``service.domain.merkle``) has ``root_hash``;
the ruleset versions then registered had these row digests.  The Ed25519 signature covers the
canonical JSON (keys sorted, no whitespace, UTF-8) of every field but ``signature``.  ``final``:
the writer signed it as it stopped, so a record after it that no later checkpoint covers was not
written by that writer.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from service.domain import merkle
from service.domain.record import StoredRecord, canonical, chain_hash

CHECKPOINT_FORMAT = "opsgate-checkpoint/1"
PROOF_FORMAT = "opsgate-proof/1"


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    writer: str
    tree_size: int
    root_hash: str  # hex
    time: str  # RFC 3339, UTC
    key_id: str
    versions: dict[str, str] = {}  # ruleset version id -> digest of its row (``version_digest``)
    final: bool = False
    format: str = CHECKPOINT_FORMAT
    signature: str = ""  # base64 of the Ed25519 signature over ``message``


def message(checkpoint: Checkpoint) -> bytes:
    """The bytes the signature covers: the canonical JSON of the checkpoint without its signature."""
    fields = msgspec.structs.asdict(checkpoint)
    del fields["signature"]
    return canonical(fields).encode()


def file_name(checkpoint: Checkpoint) -> str:
    """``<UTC time YYYYMMDDTHHMMSSffffffZ>-<writer>-<tree_size>.json``: names sort by time."""
    stamp = datetime.fromisoformat(checkpoint.time).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{name_part(checkpoint.writer)}-{checkpoint.tree_size}.json"


def name_part(writer: str) -> str:
    """A writer id as it appears in a checkpoint's file name (only letters, digits, ``.``, ``_``, ``-``)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in writer)


def leaf(chained: str) -> bytes:
    """A record's leaf hash: its chain hash (``sha256(prev_hash + body)``, hex) as 32 bytes, under the
    RFC's leaf prefix.  The chain hash, not the body: the signer and a proof read 64 characters a
    record instead of the whole body, and the body is still covered through it."""
    return merkle.leaf_hash(bytes.fromhex(chained))


class VersionRow(msgspec.Struct, frozen=True):
    """What a checkpoint covers of a registered ruleset version (its load counters change)."""

    version: str
    first_loaded_at: str
    rulesets: dict[str, str]
    git: dict[str, Any] | None
    files: list[tuple[str, str]]  # (path, sha256), by path


def version_digest(row: VersionRow) -> str:
    return hashlib.sha256(canonical(row).encode()).hexdigest()


class Consistency(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """RFC 9162 PROOF(from_size, tree): the checkpoint's tree extends the tree of its first ``from_size``
    records, which an auditor holds signed from earlier."""

    from_size: int
    path: list[str]  # hex


class Proof(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One record's inclusion in its writer's tree, and the signed checkpoint of that tree: all an
    outside auditor needs, with the signer's public key, to check that one record."""

    record: str  # the record's stored body, exactly (its canonical JSON text)
    prev_hash: str  # the chain hash of the record before it in its chain (64 zeros for the first)
    leaf_index: int  # seq - 1
    leaf_hash: str  # hex
    audit_path: list[str]  # hex, the leaf's sibling first
    checkpoint: Checkpoint
    consistency: Consistency | None = None  # asked for with an earlier tree size
    format: str = PROOF_FORMAT


def make_proof(row: StoredRecord, leaves: list[bytes], checkpoint: Checkpoint, from_size: int | None = None) -> Proof:
    """The proof of record ``row`` in the tree of ``leaves`` that ``checkpoint`` signed; with ``from_size``,
    also that this tree extends the tree of its first ``from_size`` records."""
    path = merkle.inclusion_path(row.seq - 1, leaves)
    digest = leaf(chain_hash(row.prev_hash, row.body))
    extends = None
    if from_size is not None:
        extends = Consistency(from_size, [p.hex() for p in merkle.consistency_proof(from_size, leaves)])
    return Proof(row.body, row.prev_hash, row.seq - 1, digest.hex(), [p.hex() for p in path], checkpoint, extends)


def consistency_problem(proof: Proof, earlier: Checkpoint) -> str | None:
    """Why the proof's checkpoint is not shown to extend ``earlier`` (a checkpoint the auditor kept), or None."""
    point, extends = proof.checkpoint, proof.consistency
    if earlier.writer != point.writer:
        return f"the earlier checkpoint is of writer {earlier.writer!r}, the proof's of {point.writer!r}"
    if extends is None or extends.from_size != earlier.tree_size:
        return f"the proof carries no consistency proof from tree size {earlier.tree_size} (log prove --from-size)"
    try:
        path = [bytes.fromhex(p) for p in extends.path]
        old, new = bytes.fromhex(earlier.root_hash), bytes.fromhex(point.root_hash)
    except ValueError:
        return "the consistency proof holds a value that is not hex"
    if not merkle.consistent(earlier.tree_size, point.tree_size, old, new, path):
        return (f"the checkpoint of {point.tree_size} records is not an extension of the earlier checkpoint of "
                f"{earlier.tree_size} records (signed at {earlier.time}): the log was rewritten")  # fmt: skip
    return None


def proof_problem(proof: Proof) -> str | None:
    """What is wrong with ``proof`` short of its signature (checked by whoever holds the key)."""
    try:
        record = msgspec.json.decode(proof.record)
    except msgspec.DecodeError:
        return "the record is not JSON"
    if not isinstance(record, dict) or "writer" not in record or "seq" not in record:
        return "the record names no writer and seq"
    point = proof.checkpoint
    if record["writer"] != point.writer or record["seq"] != proof.leaf_index + 1:
        return (f"the record is writer {record['writer']!r} seq {record['seq']!r}, the proof places it at "
                f"writer {point.writer!r} leaf {proof.leaf_index}")  # fmt: skip
    try:
        digest = leaf(chain_hash(proof.prev_hash, proof.record))
        path = [bytes.fromhex(p) for p in proof.audit_path]
    except ValueError:
        return "the audit path holds a value that is not hex"
    if digest.hex() != proof.leaf_hash:
        return "the record does not hash to the proof's leaf hash: the record was altered"
    found = merkle.root_from_inclusion(proof.leaf_index, point.tree_size, digest, path)
    if found is None or found.hex() != point.root_hash:
        return f"the audit path does not lead to the checkpoint's root hash (tree size {point.tree_size})"
    return None

"""Signed checkpoints: each serving process signs its own chain's tree, and proofs are made from them.

The ``Checkpointer`` follows its writer's chain as a compact Merkle tree (``service.domain.merkle``),
signs a checkpoint when it starts, every ``interval_s`` while there are new records, and a ``final``
one when it stops; each is written to the checkpoint store (a directory, whose files an exporter
may ship elsewhere).  ``prove`` makes one decision's inclusion proof against the newest checkpoint
covering it.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from service.domain import merkle
from service.domain.checkpoint import Checkpoint, Proof, leaf, make_proof, message, version_digest
from service.domain.record import now
from service.errors import BadRequest, DecisionLogError, NotCovered, NotFound
from service.ports.checkpoints import ChainReader, CheckpointStore, Signer
from service.ports.log import RecordStore

log = logging.getLogger("opsgate.checkpoints")
PAGE = 50_000  # chain hashes read at a time while following the chain


class Checkpointer:
    """Signs checkpoints of ``writer``'s chain."""

    def __init__(self, writer: str, reader: ChainReader, signer: Signer, store: CheckpointStore) -> None:
        self.writer = writer
        self.reader = reader
        self.signer = signer
        self.store = store
        self.tree = merkle.Compact()
        self.signed: int | None = None  # the tree size of the last checkpoint signed
        self._lock = asyncio.Lock()

    async def _follow(self) -> None:
        """Fold the records appended since the last call into the tree."""
        head = await self.reader.head(self.writer)
        while self.tree.size < head:
            hashes = await self.reader.hashes(self.writer, self.tree.size, min(head, self.tree.size + PAGE))
            if not hashes:
                raise DecisionLogError(f"chain {self.writer} holds no record after seq {self.tree.size}")
            for digest in hashes:
                self.tree.append(leaf(digest))

    async def sign(self, *, final: bool = False) -> Checkpoint | None:
        """Sign and write a checkpoint of the chain as it is now (unless nothing changed and not ``final``)."""
        async with self._lock:
            await self._follow()
            if self.tree.size == self.signed and not final:
                return None
            versions = {row.version: version_digest(row) for row in await self.reader.version_rows()}
            unsigned = Checkpoint(self.writer, self.tree.size, self.tree.root().hex(), now(), self.signer.key_id,
                                  versions, final)  # fmt: skip
            checkpoint = msgspec.structs.replace(unsigned, signature=self.signer.sign(message(unsigned)))
            path = await asyncio.to_thread(self.store.write, checkpoint)
            self.signed = checkpoint.tree_size
            log.info("checkpoint %s signed: %s records of chain %s", path.name, checkpoint.tree_size, self.writer)
            return checkpoint

    async def run(self, interval_s: float) -> None:
        """Sign every ``interval_s`` while there are new records (a failure is logged, and tried again)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sign()
            except Exception as error:  # noqa: BLE001 - the signer must outlive a database or disk that is down
                log.error("could not sign a checkpoint of chain %s: %s", self.writer, error)


class Proofs:
    """Inclusion proofs from the log and its checkpoint store."""

    def __init__(self, records: RecordStore, reader: ChainReader, store: CheckpointStore) -> None:
        self.records = records
        self.reader = reader
        self.store = store

    async def prove(self, decision_id: str, from_size: int | None = None) -> Proof:
        return await prove(decision_id, self.records, self.reader, self.store, from_size)


async def prove(
    decision_id: str, records: RecordStore, reader: ChainReader, store: CheckpointStore, from_size: int | None = None
) -> Proof:
    """The inclusion proof of decision ``decision_id`` in the newest checkpoint that covers it (with
    ``from_size``: and the consistency proof from that earlier tree size); NotFound, or NotCovered while
    no checkpoint covers it yet (BadRequest: ``from_size`` past the checkpoint)."""
    entries = [row for row in await records.get(decision_id) if row.kind == "decision"]
    if not entries:
        raise NotFound(f"no decision {decision_id!r} in the log")
    row = entries[0]
    checkpoint = await asyncio.to_thread(store.newest, row.writer, row.seq)
    if checkpoint is None:
        raise NotCovered(f"decision {decision_id!r} (writer {row.writer}, seq {row.seq}) is not covered by a signed "
                         "checkpoint yet: ask again after the next one")  # fmt: skip
    leaves = [leaf(digest) for digest in await reader.hashes(row.writer, 0, checkpoint.tree_size)]
    if len(leaves) != checkpoint.tree_size or merkle.root(leaves).hex() != checkpoint.root_hash:
        raise DecisionLogError(f"chain {row.writer} no longer matches its checkpoint of {checkpoint.tree_size} "
                               "records: run opsgate log verify --checkpoints")  # fmt: skip
    if from_size is not None and not 0 < from_size <= checkpoint.tree_size:
        raise BadRequest(f"--from-size {from_size}: the checkpoint covers 1..{checkpoint.tree_size} records")
    return make_proof(row, leaves, checkpoint, from_size)

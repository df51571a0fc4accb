"""What signed checkpoints cover, read from the log: a writer's chain as leaves, the versions rows,
the approval queue; and the whole log held against a set of checkpoints, read-only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from service.adapters.store.bodies import stored
from service.adapters.store.database import Database
from service.adapters.store.dialect import Dialect
from service.adapters.store.records import RECORD_COLUMNS
from service.adapters.store.verify import require_log
from service.domain.attest import AttestReport, Named, PendingRow, approval_problems, attest, expected_approvals
from service.domain.attest import version_problems as versions_against
from service.domain.checkpoint import VersionRow
from service.domain.record import StoredRecord

T = TypeVar("T")
_PENDING = ("SELECT decision_id, entry_id, ruleset, requested_by, created_at, expires_at, status, resolved_at, "
            "resolved_by FROM pending_approvals ORDER BY decision_id")  # fmt: skip


class ChainReads:
    """The reads the checkpoint signer and the proofs need (``service.ports.checkpoints.ChainReader``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def hashes(self, writer: str, after: int, upto: int) -> list[str]:
        """The chain hashes of ``writer``'s records with ``after < seq <= upto``, in seq order."""
        query = self.database.dialect.sql(
            "SELECT hash FROM log_entries WHERE writer = ? AND seq > ? AND seq <= ? ORDER BY seq"
        )
        rows = await self.database.read(lambda c: c.execute(query, (writer, after, upto)).fetchall())
        return [str(digest) for (digest,) in rows]

    async def head(self, writer: str) -> int:
        """The last seq of ``writer``'s chain (0 when it has none)."""
        query = self.database.dialect.sql("SELECT MAX(seq) FROM log_entries WHERE writer = ?")
        (seq,) = await self.database.read(lambda c: c.execute(query, (writer,)).fetchone())
        return int(seq or 0)

    async def version_rows(self) -> list[VersionRow]:
        return await self.database.read(version_rows)


def version_rows(connection: Any) -> list[VersionRow]:
    """Every registered version as a checkpoint covers it."""
    files: dict[str, list[tuple[str, str]]] = {}
    for version, path, digest in connection.execute("SELECT version, path, sha256 FROM version_files ORDER BY path"):
        files.setdefault(str(version), []).append((str(path), str(digest)))
    rows = connection.execute("SELECT version, first_loaded_at, rulesets, git FROM versions ORDER BY version")
    return [
        VersionRow(str(v), str(first), json.loads(rulesets), json.loads(git) if git else None, files.get(str(v), []))
        for v, first, rulesets, git in rows.fetchall()
    ]


def _streamed(dialect: Dialect, connection: Any, use: Callable[[Iterator[StoredRecord]], T]) -> T:
    """``use`` over every record ordered by writer and seq, streamed (a server-side cursor on PostgreSQL)."""
    if dialect.name == "postgresql":
        connection.autocommit = False
        cursor = connection.cursor(name="opsgate_attest")
    else:
        cursor = connection.cursor()
    try:
        with contextlib.closing(cursor):
            cursor.execute(f"SELECT {RECORD_COLUMNS} FROM log_entries ORDER BY writer, seq")
            return use(stored(connection, row) for row in cursor)
    finally:
        if dialect.name == "postgresql":
            connection.rollback()
            connection.autocommit = True


def attest_log(db: str, checkpoints: list[Named]) -> AttestReport:
    """The log at ``db`` held against ``checkpoints`` (their signatures already checked), read-only: the
    chains, the versions rows and the approval queue (``service.domain.attest``)."""
    dialect = require_log(db)
    connection = dialect.connect_read_only()
    try:
        report = _streamed(dialect, connection, lambda rows: attest(rows, checkpoints))
        expected = _streamed(dialect, connection, expected_approvals)
        table = [PendingRow(str(d), int(e), *map(str, rest[:5]), *rest[5:])
                 for d, e, *rest in connection.execute(_PENDING).fetchall()]  # fmt: skip
        problems = versions_against(version_rows(connection), checkpoints) + approval_problems(table, expected)
    finally:
        connection.close()
    return AttestReport(report.checkpoints, report.covered, report.problems + problems, report.notes)

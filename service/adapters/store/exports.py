"""The exporter's cursors: per sink and writer chain, the last seq a sink acknowledged, and the
checkpoint files it took; and the reads the exporter and ``opsgate log export`` make."""

from __future__ import annotations

from collections.abc import Iterator

from service.adapters.store.bodies import stored
from service.adapters.store.database import Database
from service.adapters.store.records import RECORD_COLUMNS
from service.adapters.store.verify import require_log
from service.domain.record import StoredRecord, normalize_time, now

_PAGE = 1000


class Exports:
    """``service.ports.export.ExportCursors`` over one writer's chain."""

    def __init__(self, database: Database, writer: str) -> None:
        self.database = database
        self.writer = writer
        self.sql = database.dialect.sql

    async def position(self, sink: str) -> int:
        query = self.sql("SELECT seq FROM export_cursors WHERE sink = ? AND writer = ?")
        row = await self.database.read(lambda c: c.execute(query, (sink, self.writer)).fetchone())
        return int(row[0]) if row else 0

    async def advance(self, sink: str, seq: int) -> None:
        statement = self.sql(
            "INSERT INTO export_cursors (sink, writer, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (sink, writer) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > export_cursors.seq"
        )
        await self.database.write(lambda c: c.execute(statement, (sink, self.writer, seq)))

    async def after(self, seq: int, limit: int) -> list[StoredRecord]:
        query = self.sql(
            f"SELECT {RECORD_COLUMNS} FROM log_entries WHERE writer = ? AND seq > ? ORDER BY seq LIMIT {int(limit)}"
        )
        return await self.database.read(lambda c: [stored(c, row) for row in c.execute(query, (self.writer, seq))])

    async def head(self) -> int:
        query = self.sql("SELECT MAX(seq) FROM log_entries WHERE writer = ?")
        row = await self.database.read(lambda c: c.execute(query, (self.writer,)).fetchone())
        return int(row[0]) if row and row[0] is not None else 0

    async def exported_checkpoints(self, sink: str) -> set[str]:
        query = self.sql("SELECT name FROM export_checkpoints WHERE sink = ?")
        rows = await self.database.read(lambda c: c.execute(query, (sink,)).fetchall())
        return {str(name) for (name,) in rows}

    async def checkpoint_exported(self, sink: str, name: str) -> None:
        statement = self.sql(
            "INSERT INTO export_checkpoints (sink, name, exported_at) VALUES (?, ?, ?) "
            "ON CONFLICT (sink, name) DO NOTHING"
        )
        at = now()
        await self.database.write(lambda c: c.execute(statement, (sink, name, at)))


def records_since(db: str, since: str) -> Iterator[StoredRecord]:
    """Read-only, what ``opsgate log export`` writes: each chain (by writer) from its first record
    created at or after ``since`` to its end, in seq order, so a chain's run has no gap even where
    a record was chained after a younger one."""
    dialect = require_log(db)
    moment = normalize_time(since)
    connection = dialect.connect_read_only()
    try:
        starts = connection.execute(
            dialect.sql(
                "SELECT writer, MIN(seq) FROM log_entries WHERE created_at >= ? GROUP BY writer ORDER BY writer"
            ),
            (moment,),
        ).fetchall()
        query = dialect.sql(
            f"SELECT {RECORD_COLUMNS} FROM log_entries WHERE writer = ? AND seq >= ? ORDER BY seq LIMIT {_PAGE}"
        )
        for writer, first in starts:
            seq = int(first)
            while rows := connection.execute(query, (writer, seq)).fetchall():
                yield from (stored(connection, row) for row in rows)
                seq = int(rows[-1][2]) + 1
    finally:
        connection.close()

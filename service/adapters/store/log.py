"""The decision log as the service opens it: one database and its narrow stores."""

from __future__ import annotations

from dataclasses import dataclass

from service.adapters.store.approvals import Approvals
from service.adapters.store.attest import ChainReads
from service.adapters.store.database import Database, Timeouts, dialect_for
from service.adapters.store.exports import Exports
from service.adapters.store.outbox import Outbox
from service.adapters.store.records import Records
from service.adapters.store.sessions import Sessions
from service.adapters.store.statistics import Statistics
from service.adapters.store.verify import require_log
from service.adapters.store.versions import Versions
from service.ports.export import ExportCursors
from service.ports.log import ApprovalStore, LogHealth, RecordStore, SessionStore, StatisticsStore, VersionStore


@dataclass(frozen=True)
class StoreLog:
    """The stores of one decision log over one database (``service.ports.log.Log``)."""

    database: Database
    records: RecordStore
    approvals: ApprovalStore
    versions: VersionStore
    sessions: SessionStore
    statistics: StatisticsStore
    exports: ExportCursors
    description: str
    chains: ChainReads
    outbox: Outbox

    @property
    def writer(self) -> str:
        return self.records.writer

    def health(self) -> LogHealth:
        return self.database.health()

    def close(self) -> None:
        self.database.close()


def open_log(
    db: str,
    writer: str,
    *,
    read_only: bool = False,
    timeouts: Timeouts | None = None,
    action_types: frozenset[str] = frozenset(),
) -> StoreLog:
    """The decision log at ``db`` (a SQLite file path or a postgresql:// URL), appending to chain
    ``writer``.  ``read_only``: the log must exist (else NotFound) and nothing is created or
    written: no schema, no writer thread; writing raises.  ``timeouts``: how long to wait on the
    database (default: ``Timeouts()``).  ``action_types``: the action types that have an executor, queued
    in the outbox when approved (none: nothing is queued)."""
    dialect = require_log(db, timeouts) if read_only else dialect_for(db, timeouts)
    database = Database(dialect, read_only=read_only)
    records = Records(database, writer, action_types)
    return StoreLog(
        database,
        records,
        Approvals(database, records.chain),
        Versions(database),
        Sessions(database),
        Statistics(database),
        Exports(database, writer),
        database.description,
        ChainReads(database),
        Outbox(database, writer, records.chain.append),
    )

"""Verifying a decision log read-only: every chain, its filter indexes, and every stored version."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import msgspec

from service.adapters.store.bodies import stored
from service.adapters.store.dialect import Dialect, Timeouts, dialect_for
from service.adapters.store.records import RECORD_COLUMNS
from service.domain.chain import Index, VerifyReport, verify, verify_versions
from service.domain.record import VersionFile
from service.errors import NotFound


def require_log(db: str, timeouts: Timeouts | None = None) -> Dialect:
    """The dialect of ``db`` once it is known to hold a decision log, else NotFound; read-only (a
    writing ``Database`` creates its schema in whatever database it is given)."""
    dialect = dialect_for(db, timeouts)
    if dialect.name == "sqlite" and not Path(dialect.target).is_file():
        raise NotFound(f"no decision log at {db}")
    try:
        connection = dialect.connect_read_only()
    except dialect.errors as error:
        raise NotFound(f"no decision log at {db} ({error})") from None
    try:
        connection.execute("SELECT 1 FROM log_entries WHERE 1 = 0").fetchall()
    except dialect.errors:
        raise NotFound(f"no decision log at {db} (no log_entries table)") from None
    finally:
        connection.close()
    return dialect


def verify_log(db: str) -> VerifyReport:
    """Walk every chain of the log at ``db`` (see ``service.domain.chain.verify``), read-only: nothing is
    created, and a database without a decision log raises NotFound."""
    dialect = require_log(db)
    connection = dialect.connect_read_only()
    try:
        indexes = _index_rows(connection)
        if dialect.name == "postgresql":
            connection.autocommit = False  # a server-side cursor streams inside a transaction
            cursor = connection.cursor(name="opsgate_verify")
        else:
            cursor = connection.cursor()
        with contextlib.closing(cursor):
            cursor.execute(f"SELECT {RECORD_COLUMNS} FROM log_entries ORDER BY writer, seq")
            report = verify((stored(connection, row) for row in cursor), indexes)
        if dialect.name == "postgresql":
            connection.rollback()
            connection.autocommit = True
        versions, problem = verify_versions(_all_versions(connection))
        return msgspec.structs.replace(report, versions=versions, version_error=problem)
    finally:
        connection.close()


def _index_rows(connection: Any) -> dict[int, Index]:
    """The filter indexes (fired rules, denying policies) of every record, to check against the bodies."""
    fired: dict[int, list[tuple[str, bool]]] = {}
    denied: dict[int, list[tuple[str, str]]] = {}
    for entry_id, rule, won in connection.execute("SELECT entry_id, rule_id, won FROM log_fired").fetchall():
        fired.setdefault(int(entry_id), []).append((str(rule), bool(won)))
    for entry_id, policy, vid in connection.execute("SELECT entry_id, policy, violation_id FROM log_denied"):
        denied.setdefault(int(entry_id), []).append((str(policy), str(vid)))
    return {
        entry_id: (tuple(sorted(fired.get(entry_id, []))), tuple(sorted(denied.get(entry_id, []))))
        for entry_id in set(fired) | set(denied)
    }


def _all_versions(connection: Any) -> dict[str, list[VersionFile]]:
    found: dict[str, list[VersionFile]] = {}
    rows = connection.execute(
        "SELECT v.version, f.path, f.sha256, b.content FROM versions v "
        "LEFT JOIN version_files f ON f.version = v.version LEFT JOIN blobs b ON b.sha256 = f.sha256 "
        "ORDER BY v.version, f.path"
    ).fetchall()
    for version, path, digest, content in rows:
        files = found.setdefault(str(version), [])
        if path is not None:
            files.append(VersionFile(str(path), str(digest), bytes(content or b"")))
    return found

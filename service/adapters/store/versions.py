"""The ruleset version registry: every loaded version's files, content-addressed, and its loads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from service.adapters.store.database import Database
from service.domain.record import VersionFile, VersionInfo, now


class Versions:
    """The versions, version_files and blobs tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def register_version(
        self, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: dict[str, Any] | None
    ) -> None:
        """Store a loaded version's files (content-addressed) and note when it was loaded."""
        await self.database.write(lambda c: self._register(c, version, files, rulesets, git))

    def _register(
        self, connection: Any, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: Any
    ) -> None:
        sql, at = self.database.dialect.sql, now()
        for path, content in files:
            digest = hashlib.sha256(content).hexdigest()
            connection.execute(
                sql("INSERT INTO blobs (sha256, content) VALUES (?, ?) ON CONFLICT DO NOTHING"), (digest, content)
            )
            connection.execute(
                sql("INSERT INTO version_files (version, path, sha256) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
                (version, path, digest),
            )
        connection.execute(
            sql(
                "INSERT INTO versions (version, first_loaded_at, last_loaded_at, loads, rulesets, git) "
                "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (version) DO UPDATE SET "
                "last_loaded_at = excluded.last_loaded_at, loads = versions.loads + 1, "
                "git = COALESCE(excluded.git, versions.git)"
            ),
            (version, at, at, json.dumps(rulesets, sort_keys=True), json.dumps(git) if git else None),
        )

    async def versions(self) -> list[VersionInfo]:
        """Every registered version, most recently loaded first."""
        query = "SELECT version, first_loaded_at, last_loaded_at, loads, rulesets, git FROM versions"
        rows = await self.database.read(lambda c: c.execute(query + " ORDER BY last_loaded_at DESC").fetchall())
        return [
            VersionInfo(v, first, last, int(n), json.loads(rs), json.loads(git) if git else None)
            for v, first, last, n, rs, git in rows
        ]

    async def version_files(self, version: str) -> list[VersionFile]:
        """The files of ``version``, by path."""
        query = self.database.dialect.sql(
            "SELECT f.path, f.sha256, b.content FROM version_files f JOIN blobs b ON b.sha256 = f.sha256 "
            "WHERE f.version = ? ORDER BY f.path"
        )
        rows = await self.database.read(lambda c: c.execute(query, (version,)).fetchall())
        return [VersionFile(str(p), str(s), bytes(content)) for p, s, content in rows]

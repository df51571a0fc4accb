"""The dashboard's figures, computed in the database over a window of the log."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import msgspec

from service.adapters.store.database import Database
from service.adapters.store.records import current_status_sql
from service.domain.stats import BUCKETS, WindowStats


class Statistics:
    """Counts and percentiles over the decision log."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def window_stats(self, since: str, until: str, bucket: str = "hour") -> WindowStats:
        """Counts, denials by policy and latency percentiles of the decisions logged in [since, until),
        and their current statuses by ``bucket`` of time (minute, hour or day)."""
        stats = await self.database.read(lambda c: self._window_stats(c, since, until))
        timeline = await self.database.read(lambda c: self._timeline(c, since, until, BUCKETS[bucket]))
        return msgspec.structs.replace(stats, timeline=timeline)

    def _timeline(self, connection: Any, since: str, until: str, chars: int) -> dict[str, dict[str, int]]:
        """Decisions by the start of their bucket (the log's time cut to ``chars``) and current status."""
        current = current_status_sql(self.database.dialect)
        query = (
            f"SELECT SUBSTR(created_at, 1, {int(chars)}), {current}, COUNT(*) FROM log_entries "
            "WHERE kind = 'decision' AND created_at >= ? AND created_at < ? GROUP BY 1, 2 ORDER BY 1, 2"
        )
        timeline: dict[str, dict[str, int]] = {}
        for start, status, n in connection.execute(self.database.dialect.sql(query), (since, until)).fetchall():
            timeline.setdefault(str(start), {})[str(status)] = int(n)
        return timeline

    def _window_stats(self, connection: Any, since: str, until: str) -> WindowStats:
        sql, window = self.database.dialect.sql, "kind = 'decision' AND created_at >= ? AND created_at < ?"

        def counts(query: str) -> dict[str, int]:
            return {str(key): int(n) for key, n in connection.execute(sql(query), (since, until)).fetchall()}

        by_type: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        query = f"SELECT decision_type, execution_status, COUNT(*) FROM log_entries WHERE {window} GROUP BY 1, 2"
        for decision_type, status, n in connection.execute(sql(query), (since, until)).fetchall():
            by_type[str(decision_type)] += int(n)
            by_status[str(status)] += int(n)
        denied = counts(
            "SELECT d.policy, COUNT(DISTINCT d.entry_id) FROM log_denied d JOIN log_entries e ON e.id = d.entry_id "
            f"WHERE e.{window.replace(' AND ', ' AND e.')} GROUP BY d.policy"
        )
        resolved = counts(
            "SELECT status, COUNT(*) FROM pending_approvals WHERE resolved_at >= ? AND resolved_at < ? GROUP BY status"
        )
        p50, p90, p99 = self._percentiles(connection, window, (since, until), (0.50, 0.90, 0.99))
        return WindowStats(sum(by_type.values()), dict(sorted(by_type.items())), dict(sorted(by_status.items())),
                           denied, p50, p99, resolved, latency_p90_ms=p90)  # fmt: skip

    def _percentiles(
        self, connection: Any, window: str, params: tuple[str, str], ranks: tuple[float, ...]
    ) -> list[float | None]:
        """Nearest-rank percentiles of the decisions' end-to-end latency, computed in the database."""
        sql, latency = self.database.dialect.sql, self.database.dialect.latency
        where = f"{window} AND {latency} IS NOT NULL"
        (total,) = connection.execute(sql(f"SELECT COUNT(*) FROM log_entries WHERE {where}"), params).fetchone()
        found: list[float | None] = []
        for rank in ranks:
            if not total:
                found.append(None)
                continue
            offset = max(math.ceil(rank * int(total)) - 1, 0)
            query = f"SELECT {latency} FROM log_entries WHERE {where} ORDER BY 1 LIMIT 1 OFFSET {offset}"
            found.append(float(connection.execute(sql(query), params).fetchone()[0]))
        return found

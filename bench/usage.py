"""What a measured window cost: CPU of a server's process tree (its own processes and its OPA) from
``/proc/<pid>/stat``, and the decision log's growth in bytes.  Pure arithmetic and parsing first, then the
readers of ``/proc``, SQLite and PostgreSQL.

CPU is utime + stime (every thread of a process), in clock ticks; a window's figure is the difference of
two samples, divided by the window's successful (2xx) decisions.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPA_COMM = "opa"  # the kernel's name of an opa process (/proc/<pid>/stat's second field)


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    ppid: int
    ticks: int  # utime + stime: user and system CPU of every thread, in clock ticks


@dataclass(frozen=True)
class Cpu:
    """CPU ticks of a server: its own processes (``service``) and the OPA processes it queries (``opa``)."""

    service: int
    opa: int

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.service - other.service, self.opa - other.opa)


def parse_stat(text: str) -> ProcStat:
    """One ``/proc/<pid>/stat`` line.  The command name is in parentheses and may hold spaces and ``)``:
    the fields after it are counted from the last ``)`` (state is field 3, ppid 4, utime 14, stime 15)."""
    head, _, tail = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = tail.split()
    return ProcStat(int(pid), comm, int(fields[1]), int(fields[11]) + int(fields[12]))


def descendants(root: int, stats: Iterable[ProcStat]) -> list[ProcStat]:
    """``root`` and every process below it, from one snapshot of the process table."""
    children: dict[int, list[ProcStat]] = {}
    by_pid = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
        by_pid[stat.pid] = stat
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in by_pid:
            found.append(by_pid[pid])
        todo.extend(child.pid for child in children.get(pid, []))
    return found


def split_cpu(root: int, stats: list[ProcStat], shared_opa: int | None = None) -> Cpu:
    """``root``'s tree split into its OPA processes and the rest; ``shared_opa``: an OPA outside the tree that
    the server queries (``--opa-url``), counted as its OPA."""
    tree = descendants(root, stats)
    opa = sum(s.ticks for s in tree if s.comm == OPA_COMM)
    if shared_opa is not None:
        opa += sum(s.ticks for s in stats if s.pid == shared_opa)
    return Cpu(sum(s.ticks for s in tree if s.comm != OPA_COMM), opa)


def us_per_decision(ticks: int, decisions: int, ticks_per_s: int) -> float | None:
    """CPU microseconds per decision; None when there was no successful decision to divide by."""
    return ticks * 1e6 / ticks_per_s / decisions if decisions > 0 else None


def bytes_per_decision(before: int, after: int, decisions: int) -> float | None:
    """The log's growth per decision; None when there was no decision."""
    return (after - before) / decisions if decisions > 0 else None


def successful(requests: int, non_2xx: int, items: int) -> int:
    """Decisions answered 2xx: wrk counts completed requests, of which ``non_2xx`` were not; ``items`` a request."""
    return max(0, requests - non_2xx) * items


@dataclass(frozen=True)
class Window:
    """One measured window of one scenario: what it cost and what it decided."""

    cpu: Cpu
    log_bytes: int
    decisions: int  # 2xx only
    logged: int = 0  # decisions the log received in the window
    escalated: int = 0  # of which ESCALATED (fail-closed answers among them: cheaper, they inflate req/s)


def totals(windows: list[Window], ticks_per_s: int, opa_only: bool = False) -> dict[str, Any]:
    """Every window of a cell taken together: total CPU and log growth over total successful decisions."""
    decisions = sum(w.decisions for w in windows)
    service = sum(w.cpu.service for w in windows)
    opa = sum(w.cpu.opa for w in windows)
    grown = sum(w.log_bytes for w in windows)
    cpu = {
        "service_us": None if opa_only else us_per_decision(service, decisions, ticks_per_s),
        "opa_us": us_per_decision(opa, decisions, ticks_per_s),
        "all_in_us": us_per_decision(opa + (0 if opa_only else service), decisions, ticks_per_s),
    }
    rounded = {k: None if v is None else round(v, 1) for k, v in cpu.items()}
    per = None if opa_only else bytes_per_decision(0, grown, decisions)
    logged = sum(w.logged for w in windows)
    share = sum(w.escalated for w in windows) / logged if logged else None
    return {"cpu_per_decision": rounded, "log_bytes_per_decision": None if per is None else round(per, 1),
            "escalated_share": None if share is None else round(share, 4)}  # fmt: skip


def median_eval_us(answers: Iterable[dict[str, Any]]) -> float | None:
    """OPA's own ``?metrics=true`` query evaluation time (``timer_rego_query_eval_ns``), median, in µs."""
    found = [a["metrics"]["timer_rego_query_eval_ns"] / 1000 for a in answers if "metrics" in a]
    return round(statistics.median(found), 1) if found else None


# --- readers ----------------------------------------------------------------------------


def ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_table(proc: Path = Path("/proc")) -> list[ProcStat]:
    """Every process's stat line now; processes that exit while it is read are left out."""
    stats = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stats.append(parse_stat((entry / "stat").read_text()))
            except (OSError, ValueError, IndexError):
                continue
    return stats


def sqlite_bytes(path: str) -> int:
    """The database's size as its readers see it (page_count * page_size, committed WAL frames included)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        count = connection.execute("PRAGMA page_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    return int(count) * int(size)


def pg_bytes(url: str) -> int:
    """The tables of the URL's schema (``options=-csearch_path%3D<schema>``), with indexes and TOAST."""
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    query = (
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'"
    )
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(query, (schema,)).fetchone()
    return int(row[0]) if row else 0


_LAST = "SELECT coalesce(max(id), 0) FROM log_entries"
_SINCE = (
    "SELECT count(*), coalesce(sum(CASE WHEN execution_status = 'ESCALATED' THEN 1 ELSE 0 END), 0) "
    "FROM log_entries WHERE kind = 'decision' AND id > {}"
)


def _query(db: str, sql: str) -> tuple[Any, ...]:
    if db.startswith(("postgresql:", "postgres:")):
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            row = pg.execute(sql).fetchone()
        return tuple(row) if row else ()
    with sqlite3.connect(f"file:{db.removeprefix('sqlite:')}?mode=ro", uri=True) as connection:
        found = tuple(connection.execute(sql).fetchone())
    connection.close()
    return found


def log_position(db: str) -> int:
    """The log's last entry id now (the start of a window)."""
    return int(_query(db, _LAST)[0])


def escalated_since(db: str, after_id: int) -> tuple[int, int]:
    """(decisions logged after entry ``after_id``, of which ESCALATED)."""
    logged, escalated = _query(db, _SINCE.format(int(after_id)))
    return int(logged), int(escalated)


def log_size(db: str) -> Callable[[], int]:
    """A reader of the log's size for ``--db`` (a SQLite path or a PostgreSQL URL)."""
    if db.startswith(("postgresql:", "postgres:")):
        return lambda: pg_bytes(db)
    return lambda: sqlite_bytes(db.removeprefix("sqlite:"))

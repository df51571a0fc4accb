"""The benchmark's verdicts and its printed table: every target of the performance issues, met or not met
with the figure this run measured, or said to be measured elsewhere."""

from __future__ import annotations

from typing import Any

#: targets this run cannot measure, and where they are measured
ELSEWHERE = [
    ("16 cores: --workers 8 >= 5x --workers 1, and >= 0.5x raw OPA on 4 and 8 cores",
     "python -m bench.multicore (make bench-multicore) on a machine of 16 cores or more"),
    ("service RSS growth < 5 MB over 1,000,000 decisions", "make bench-memory (bench/memory.py)"),
]  # fmt: skip
LOG_BYTES_LIMIT = 1500  # "log <= 1.5 KB per decision" (KB of 1,000 bytes, as the 4.2 KB)


def cell(table: list[dict[str, Any]], scenario: str, level: int) -> dict[str, Any] | None:
    for entry in table:
        if entry["scenario"] == scenario and entry["concurrency"] == level and entry["available"]:
            return entry
    return None


def target(name: str, figure: float | None, limit: float, at_least: bool, unit: str) -> dict[str, Any]:
    if figure is None:
        return {"target": name, "measured": None, "met": None, "note": "not measured in this run"}
    met = figure >= limit if at_least else figure <= limit
    return {"target": name, "measured": round(figure, 3), "unit": unit, "met": met}


def targets(table: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure this run measured; ``extra``: figures measured outside the
    table (``opa_eval_us``, ``log_bytes_per_decision``)."""

    def ratio(a: tuple[str, int], b: tuple[str, int], key: str) -> float | None:
        x, y = cell(table, *a), cell(table, *b)
        return x[key] / y[key] if x and y and y[key] else None

    log_share = ratio(("decide-sqlite", 64), ("decide-log-off", 64), "requests_per_s")
    sqlite64 = cell(table, "decide-sqlite", 64)
    all_in = sqlite64["cpu_per_decision"]["all_in_us"] if sqlite64 else None
    found = [
        target("/decide (SQLite log) at c=64 >= 0.6x raw OPA throughput",
               ratio(("decide-sqlite", 64), ("opa-rest", 64), "requests_per_s"), 0.6, True, "x"),
        target("all-in CPU (service + its OPA) per decision, /decide SQLite log, c=64 <= 300 us",
               all_in, 300.0, False, "us"),
        target("OPA evaluation per decision (raw OPA ?metrics=true, median) <= 40 us",
               extra.get("opa_eval_us"), 40.0, False, "us"),
        target("/decide/batch (100 items) >= 10x decisions/s of single /decide (c=8)",
               ratio(("batch-100", 8), ("decide-sqlite", 8), "decisions_per_s"), 10.0, True, "x"),
        target("/decide p99 at c=8 <= 2x raw OPA p99 at c=8",
               ratio(("decide-sqlite", 8), ("opa-rest", 8), "p99_ms"), 2.0, False, "x"),
        target("1,000 rules >= 0.7x throughput of 5 rules (c=64)",
               ratio(("rules-1000", 64), ("decide-sqlite", 64), "requests_per_s"), 0.7, True, "x"),
        target("durable log costs <= 20% of throughput vs log off (c=64)",
               None if log_share is None else 1 - log_share, 0.2, False, "share lost"),
        target("SQLite log <= 1.5 KB per decision (file growth / 2xx decisions, /decide rows)",
               extra.get("log_bytes_per_decision"), LOG_BYTES_LIMIT, False, "bytes"),
    ]  # fmt: skip
    elsewhere = [{"target": name, "measured": None, "met": None, "note": f"measured by {where}"}
                 for name, where in ELSEWHERE]  # fmt: skip
    return found + elsewhere


def verdict_line(check: dict[str, Any]) -> str:
    verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
    if check["met"] is None:
        return f"{verdict:>12}: {check['target']} ({check['note']})"
    return f"{verdict:>12}: {check['target']} (measured {check['measured']:g} {check['unit']})"


def _figure(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.0f}"


def _share(value: float | None) -> str:
    return f"{'-':>5}" if value is None else f"{value:>5.0%}"


def row_line(e: dict[str, Any]) -> str:
    if not e["available"]:
        return f"{e['scenario']:<20} {e['concurrency']:>3}   not available: {e['reason']}"
    cpu = e["cpu_per_decision"]
    errors = e["non_2xx"] + e["socket_errors"]
    flag = f"  (not counted: {e['non_2xx']} non-2xx, {e['socket_errors']} socket errors)" if errors else ""
    return (f"{e['scenario']:<20} {e['concurrency']:>3} {e['requests_per_s']:>8.0f} {e['decisions_per_s']:>9.0f} "
            f"{e['p50_ms']:>7.2f} {e['p99_ms']:>8.2f} {e['ratio_to_opa']:>6.2f} {_figure(cpu['service_us'], 7)} "
            f"{_figure(cpu['opa_us'], 6)} {_figure(cpu['all_in_us'], 7)} "
            f"{_figure(e['log_bytes_per_decision'], 7)} {_share(e['escalated_share'])}{flag}")  # fmt: skip


HEADER = (f"{'scenario':<20} {'c':>3} {'req/s':>8} {'dec/s':>9} {'p50 ms':>7} {'p99 ms':>8} {'x OPA':>6} "
          f"{'svc us':>7} {'opa us':>6} {'all us':>7} {'log B':>7} {'esc':>5}")  # fmt: skip


def print_table(table: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    """Per row: 2xx requests and decisions a second, latency, ratio to raw OPA, CPU µs per decision (the
    service's own processes, its OPA, both), the log's bytes per decision and the share of the logged
    decisions that escalated (fail-closed answers among them); then the targets."""
    print(HEADER)
    for entry in table:
        print(row_line(entry))
    print()
    for check in checks:
        print(verdict_line(check))

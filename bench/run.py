"""opsgate measured side by side with raw OPA, in one run (issue 6): ``make bench`` / ``make bench-quick``.

Starts, on loopback only, the real ``opa run --server`` with the guardrail bundle the service builds, and
``opsgate serve`` processes (SQLite log, PostgreSQL log, log switched off, 100- and 1,000-rule rulesets).
Then wrk drives every scenario at every concurrency, round-robin over several short rounds (the order
rotated each round, so drift on a shared machine spreads over all rows), and the medians are reported
with the ratio to raw OPA at the same concurrency.  Writes bench/results/<date>[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import rulesets, usage, wrk
from bench.report import print_table, targets
from bench.servers import PG_SERVER, ROOT, Server, http, pg_schema, start_opa, start_service
from service.adapters.opa.binary import find_opa

FACTS = {
    "org_id": 0,
    "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
    "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
    "history": {"failures": 0, "latency": 500},
}
BATCH_ITEMS = 100
COUNTING = (
    "req/s, decisions/s and the ratios count 2xx answers only; cpu_per_decision: utime+stime deltas "
    "(/proc/<pid>/stat) of the server's processes (service_us) and of its OPA (opa_us) over every round's "
    "window together, divided by the 2xx decisions; log_bytes_per_decision: the log's growth (SQLite "
    "page_count*page_size, PostgreSQL pg_total_relation_size of its tables) over the same windows; "
    "escalated_share: of the decisions logged in those windows, the ESCALATED (fail-closed answers among them)"
)
RSS_NOTE = "serving process only, after warm-up and after the rounds; not the 1M-decision check"
TICKS = usage.ticks_per_second()
OPA_EVAL_QUERIES = 200
PROFILES = {"quick": {"rounds": 2, "seconds": 1, "warmup": 1}, "full": {"rounds": 5, "seconds": 5, "warmup": 2}}


@dataclass
class Scenario:
    name: str
    what: str
    server: str
    path: str
    body: Path | None = None
    items: int = 1  # decisions per request
    unavailable: str = ""  # why the row could not be measured
    shared_opa: bool = False  # the server queries the raw OPA (--opa-url): that OPA's CPU is its OPA's
    runs: dict[int, list[wrk.WrkReport]] = field(default_factory=dict)
    windows: dict[int, list[usage.Window]] = field(default_factory=dict)


# --- setting up -------------------------------------------------------------------


def prepare_rules(stack: ExitStack, work: Path, opsgate: str, opa_bin: str) -> tuple[dict[int, Path], list[Any]]:
    """rules dirs of 5 (ops.yaml as shipped), 100 and 1,000 rules; `opsgate check` started on the generated
    ones (killed on the way out if the run stops before they finish)."""
    dirs = {5: work / "rules-5"}
    dirs[5].mkdir()
    shutil.copy(rulesets.OPS, dirs[5] / "ops.yaml")
    checks = []
    for size in (100, 1000):
        dirs[size] = rulesets.write_variant(size, work / f"rules-{size}")
        log = work / f"check-{size}.log"
        check = rulesets.start_check(opsgate, dirs[size], ROOT / "rego", opa_bin, log)
        stack.callback(check.wait)
        stack.callback(check.kill)
        checks.append((check, log))
    return dirs, checks


def start_all(
    stack: ExitStack, work: Path, opsgate: str, opa_bin: str, rules: dict[int, Path], pg: str | None
) -> dict[str, Server]:
    rego = ROOT / "rego"

    def sqlite(name: str) -> str:
        return str(work / f"{name}.db")

    servers = {"opa": start_opa(opa_bin, rego, work)}
    stack.callback(servers["opa"].close)
    shared_opa = ("--workers", "2", "--opa-url", servers["opa"].base)
    plans: list[tuple[str, int, str, bool, tuple[str, ...]]] = [
        ("sqlite", 5, sqlite("sqlite"), False, ()), ("logoff", 5, sqlite("logoff"), True, ()),
        ("rules100", 100, sqlite("rules100"), False, ()), ("rules1000", 1000, sqlite("rules1000"), False, ()),
        ("workers2", 5, sqlite("workers2"), False, ("--workers", "2")),
        ("workers2shared", 5, sqlite("workers2shared"), False, shared_opa),
    ]  # fmt: skip
    if pg:
        plans.append(("pg", 5, pg, False, ()))
    for name, size, db, log_off, extra in plans:
        servers[name] = start_service(name, opsgate, rules[size], rego, db, work, opa_bin, log_off, extra)
        stack.callback(servers[name].close)  # at once: a later start that fails must not leak this one
    for server in servers.values():
        server.wait_ready(timeout=180)
    return servers


def write_body(work: Path, name: str, value: Any) -> Path:
    path = work / f"{name}.json"
    path.write_text(json.dumps(value))
    return path


def opa_input(servers: dict[str, Server]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The input the service sends OPA for FACTS, rebuilt from its own answer: validated facts (defaults
    filled in), its proposal and ruleset; and the service's answer, for the record."""
    status, answer = http("POST", servers["sqlite"].base + "/decide", json.dumps(FACTS).encode())
    if status != 200:
        raise RuntimeError(f"POST /decide answered {status}: {answer}")
    result = answer["result"]
    explanation = result["explanation"]
    if not explanation["guardrails"]["available"]:
        raise RuntimeError(f"the service could not reach its OPA: {explanation['guardrails']}")
    ruleset = {"name": explanation["ruleset"]["name"], "version": explanation["ruleset"]["version"]}
    return {"input": {"ruleset": ruleset, "facts": result["context"], "proposal": explanation["proposal"]}}, answer


def batch_body(work: Path, servers: dict[str, Server]) -> tuple[Path | None, str]:
    """A 100-item POST /decide/batch body, checked once against the service; or None and why not."""
    value = {"items": [FACTS] * BATCH_ITEMS}
    status, _ = http("POST", servers["sqlite"].base + "/decide/batch", json.dumps(value).encode())
    if status != 200:
        return None, f"POST /decide/batch answered {status}"
    return write_body(work, "batch", value), ""


def scenarios(work: Path, servers: dict[str, Server], pg: str | None) -> tuple[list[Scenario], dict[str, Any]]:
    opa_body, answer = opa_input(servers)
    facts = write_body(work, "facts", FACTS)
    batch, batch_note = batch_body(work, servers)
    rows = [
        Scenario("opa-rest", "(a) raw OPA REST, same bundle and input", "opa", "/v1/data/opsgate/decision",
                 write_body(work, "opa-input", opa_body)),
        Scenario("decide-sqlite", "(b) /decide, 5 rules, durable SQLite log", "sqlite", "/decide", facts),
        Scenario("decide-pg", "(c) /decide, 5 rules, PostgreSQL log", "pg", "/decide", facts,
                 unavailable="" if pg else f"no PostgreSQL at {PG_SERVER}"),
        Scenario("batch-100", "(d) /decide/batch, 100 items, SQLite log", "sqlite", "/decide/batch", batch,
                 items=BATCH_ITEMS, unavailable="" if batch else batch_note),
        Scenario("rules-100", "(e) /decide, 100 rules, SQLite log", "rules100", "/decide", facts),
        Scenario("rules-1000", "(e) /decide, 1,000 rules, SQLite log", "rules1000", "/decide", facts),
        Scenario("decide-log-off", "/decide, 5 rules, log off (python -m bench.logoff)", "logoff", "/decide", facts),
        Scenario("workers-2", "/decide, serve --workers 2, an OPA child each, SQLite log", "workers2", "/decide",
                 facts),
        Scenario("workers-2-shared-opa", "/decide, serve --workers 2 --opa-url (a): one shared OPA, SQLite log",
                 "workers2shared", "/decide", facts, shared_opa=True),
    ]  # fmt: skip
    probe = {"opa_input": opa_body["input"], "decide_answer": answer}
    return rows, probe


# --- measuring --------------------------------------------------------------------


def measured(row: Scenario, servers: dict[str, Server], level: int, seconds: int) -> None:
    """One wrk run of ``row`` at ``level``, with the CPU of the server's processes and its log's growth."""
    server = servers[row.server]
    shared = servers["opa"].proc.pid if row.shared_opa else None
    size = usage.log_size(server.db) if server.db else (lambda: 0)
    start = usage.log_position(server.db) if server.db else 0
    cpu, grown = usage.split_cpu(server.proc.pid, usage.process_table(), shared), size()
    report = wrk.run(server.base + row.path, row.body or Path(), level, seconds)
    cpu = usage.split_cpu(server.proc.pid, usage.process_table(), shared) - cpu
    grown = size() - grown
    logged, escalated = usage.escalated_since(server.db, start) if server.db else (0, 0)
    decisions = usage.successful(report.requests, report.non_2xx, row.items)
    row.runs.setdefault(level, []).append(report)
    row.windows.setdefault(level, []).append(usage.Window(cpu, grown, decisions, logged, escalated))


def measure(rows: list[Scenario], servers: dict[str, Server], levels: list[int], profile: dict[str, int]) -> None:
    """Warm each scenario up, then round-robin: every scenario at every concurrency once per round."""
    live = [row for row in rows if not row.unavailable]
    for row in live:
        wrk.run(servers[row.server].base + row.path, row.body or Path(), 8, profile["warmup"])
    for round_no in range(profile["rounds"]):
        shift = round_no % len(live)
        for row in live[shift:] + live[:shift]:
            for level in levels:
                measured(row, servers, level, profile["seconds"])
        print(f"round {round_no + 1}/{profile['rounds']} done", file=sys.stderr, flush=True)


def ok_per_s(report: wrk.WrkReport) -> float:
    """Requests a second answered 2xx (wrk's rate counts every completed request)."""
    return report.requests_per_s * (report.requests - report.non_2xx) / report.requests if report.requests else 0.0


def summary(rows: list[Scenario], levels: list[int]) -> list[dict[str, Any]]:
    """One entry per scenario and concurrency: medians over the rounds of 2xx answers only, the ratio to raw
    OPA, and CPU and log bytes per 2xx decision over all the rounds together."""
    table: list[dict[str, Any]] = []
    opa = {level: statistics.median(ok_per_s(r) for r in rows[0].runs[level]) for level in levels}
    for row in rows:
        for level in levels:
            entry: dict[str, Any] = {"scenario": row.name, "what": row.what, "concurrency": level}
            if row.unavailable:
                table.append({**entry, "available": False, "reason": row.unavailable})
                continue
            runs = row.runs[level]
            rps = statistics.median(ok_per_s(r) for r in runs)
            table.append({**entry, "available": True, "requests_per_s": round(rps, 1),
                          "decisions_per_s": round(rps * row.items, 1),
                          "p50_ms": round(statistics.median(r.p50_ms for r in runs), 3),
                          "p99_ms": round(statistics.median(r.p99_ms for r in runs), 3),
                          "ratio_to_opa": round(rps * row.items / opa[level], 3),
                          "rounds": [round(ok_per_s(r), 1) for r in runs],
                          "non_2xx": sum(r.non_2xx for r in runs),
                          "socket_errors": sum(r.socket_errors for r in runs),
                          **usage.totals(row.windows[level], TICKS, opa_only=row.server == "opa")})  # fmt: skip
    return table


def extra_figures(rows: list[Scenario], servers: dict[str, Server], opa_body: Path) -> dict[str, Any]:
    """OPA's own evaluation time per query (raw OPA, ``?metrics=true``), and the SQLite log's bytes per
    decision over every window of the single /decide SQLite row."""
    body = opa_body.read_bytes()
    answers = [http("POST", servers["opa"].base + "/v1/data/opsgate/decision?metrics=true", body)[1]
               for _ in range(OPA_EVAL_QUERIES)]  # fmt: skip
    sqlite = next(row for row in rows if row.name == "decide-sqlite")
    windows = [w for level in sqlite.windows.values() for w in level]
    per = usage.totals(windows, TICKS)["log_bytes_per_decision"]
    return {"opa_eval_us": usage.median_eval_us(a for a in answers if isinstance(a, dict)),
            "opa_eval_queries": OPA_EVAL_QUERIES, "log_bytes_per_decision": per}  # fmt: skip


# --- recording --------------------------------------------------------------------


def machine() -> dict[str, Any]:
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")]  # fmt: skip
    return {"cores": os.cpu_count(), "cpu_model": models[0] if models else platform.processor(),
            "kernel": platform.release(), "load_average_at_start": os.getloadavg()}  # fmt: skip


def versions(opa_bin: str) -> dict[str, str]:
    def first_line(args: list[str]) -> str:
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
        return (done.stdout or done.stderr).splitlines()[0].strip()

    found = {"python": platform.python_version(), "opa": first_line([opa_bin, "version"]).removeprefix("Version: ")}
    for dist in ("durable_rules", "litestar", "msgspec", "uvicorn", "uvloop", "psycopg"):
        found[dist] = metadata.version(dist)
    found["wrk"] = " ".join(first_line(["wrk", "-v"]).split()[:2])
    return found


def result_path(out: Path, quick: bool) -> Path:
    """bench/results/<date>[-quick][-N].json: a later run of the same day never overwrites an earlier one."""
    out.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y-%m-%d") + ("-quick" if quick else "")
    path, n = out / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = out / f"{stem}-{n}.json"
    return path


# --- the command ------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s per cell")
    parser.add_argument("--rounds", type=int, help="rounds (default: 2 quick, 5 full)")
    parser.add_argument("--seconds", type=int, help="seconds of wrk per cell and round (default: 1 quick, 5 full)")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated wrk connections (default: 1,8,64)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    parser.add_argument("--opa-bin", default=os.environ.get("OPSGATE_OPA_BIN"), help="the opa binary")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace, profile: dict[str, int], levels: list[int], opa_bin: str) -> dict[str, Any]:
    """Starts every server, measures, and answers what the record holds of the run itself."""
    opsgate = str(Path(sys.executable).with_name("opsgate"))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        pg = stack.enter_context(pg_schema())
        rules, checks = prepare_rules(stack, work, opsgate, opa_bin)
        servers = start_all(stack, work, opsgate, opa_bin, rules, pg)
        for check, log in checks:
            rulesets.finish_check(check, log)
        print(f"servers ready, rulesets checked ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        rows, probe = scenarios(work, servers, pg)
        rss_before = {name: s.rss_kb() for name, s in servers.items() if name != "opa"}
        measure(rows, servers, levels, profile)
        rss_after = {name: s.rss_kb() for name, s in servers.items() if name != "opa"}
        extra = extra_figures(rows, servers, rows[0].body or Path())
    table = summary(rows, levels)
    return {"rows": table, "figures": extra, "targets": targets(table, extra), "probe": probe,
            "rss_kb": {"before": rss_before, "after": rss_after, "note": RSS_NOTE}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench installs it: apt-get install -y wrk)", file=sys.stderr)
        return 2
    profile = dict(PROFILES["quick" if args.quick else "full"])
    profile.update({k: v for k, v in (("rounds", args.rounds), ("seconds", args.seconds)) if v})
    levels = [int(level) for level in args.concurrency.split(",")]
    opa_bin = find_opa(args.opa_bin)
    started, host = time.monotonic(), machine()  # the load average before anything of ours runs
    measured_run = run_all(args, profile, levels, opa_bin)
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
              "mode": "quick" if args.quick else "full", "profile": profile, "concurrency": levels,
              "machine": host, "versions": versions(opa_bin), "wall_seconds": round(time.monotonic() - started),
              "counting": COUNTING, **measured_run}  # fmt: skip
    path = result_path(args.out, args.quick)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print_table(record["rows"], record["targets"])
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({record['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench.multicore`` (``make bench-multicore``): opsgate against raw OPA on dedicated cores.

For machines of 16 cores or more (on fewer it says why and exits 0: nothing would be measured but the
machine's contention).  Two groups: the servers pinned with ``taskset`` to cores 0-3, then to 0-7, with
``GOMAXPROCS`` equal to that count for every OPA; wrk pinned to cores 12-15 with 4 threads.  In each group a
raw OPA (the service's bundle and input, the anchor) and ``opsgate serve --workers 1/2/4/8`` with the
durable SQLite log start together; after 2 s of warm-up each, 3 rounds (the order rotated each round) of
5 s at c=64 and c=256, medians.  Each row records 2xx requests a second, p99, the ratio to the group's raw
OPA, the CPU of the server's process tree and of wrk per wall second (a wrk near its 4 cores measures wrk,
not the server), CPU µs per decision (the service's processes, its OPAs), and the share of the window's
logged decisions that escalated (a fail-closed answer is cheaper and inflates req/s).
Writes bench/results/<date>-multicore[-N].json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import rulesets, usage, wrk
from bench.run import FACTS, machine, versions
from bench.servers import ROOT, Server, http, start_opa, start_service
from service.adapters.opa.binary import find_opa

MIN_CORES = 16
GROUPS = {4: "0-3", 8: "0-7"}  # server cores: the count and the taskset list
WRK_CORES, WRK_THREADS = "12-15", 4
WORKERS = (1, 2, 4, 8)
LEVELS = (64, 256)
ROUNDS, SECONDS, WARMUP = 3, 5, 2
TICKS = usage.ticks_per_second()


def why_not(cores: int, have_taskset: bool, have_wrk: bool) -> str | None:
    """Why this machine cannot run the multi-core benchmark; None when it can."""
    if cores < MIN_CORES:
        return (f"bench.multicore: this machine gives {cores} cores, it needs {MIN_CORES} (servers on 0-7, "
                f"wrk on {WRK_CORES}); nothing measured")  # fmt: skip
    if not have_taskset:
        return "bench.multicore: taskset (util-linux) is missing; nothing measured"
    if not have_wrk:
        return "bench.multicore: wrk is missing (apt-get install -y wrk); nothing measured"
    return None


@dataclass
class Row:
    name: str
    server: Server
    path: str
    body: Path
    samples: dict[int, list[dict[str, float]]] = field(default_factory=dict)


def one_window(row: Row, level: int) -> dict[str, float]:
    """A wrk run of ``SECONDS`` at ``level`` with what it cost."""
    pid, db = row.server.proc.pid, row.server.db
    start = usage.log_position(db) if db else 0
    cpu, children = usage.split_cpu(pid, usage.process_table()), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    report = wrk.run(row.server.base + row.path, row.body, level, SECONDS, threads=WRK_THREADS,
                     pin=("taskset", "-c", WRK_CORES))  # fmt: skip
    wall = time.monotonic() - started
    cpu = usage.split_cpu(pid, usage.process_table()) - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_s = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    logged, esc = usage.escalated_since(db, start) if db else (0, 0)
    ok = usage.successful(report.requests, report.non_2xx, 1)
    sample = {"requests_per_s": report.requests_per_s * ok / report.requests if report.requests else 0.0,
              "p99_ms": report.p99_ms, "non_2xx": report.non_2xx, "socket_errors": report.socket_errors,
              "server_cores": (cpu.service + cpu.opa) / TICKS / wall, "wrk_cores": wrk_s / wall,
              "service_us": usage.us_per_decision(cpu.service, ok, TICKS) or 0.0,
              "opa_us": usage.us_per_decision(cpu.opa, ok, TICKS) or 0.0,
              "escalated_share": esc / logged if logged else 0.0}  # fmt: skip
    return sample


def measure(rows: list[Row]) -> None:
    for row in rows:
        wrk.run(row.server.base + row.path, row.body, 64, WARMUP, threads=WRK_THREADS, pin=("taskset", "-c", WRK_CORES))
    for round_no in range(ROUNDS):
        shift = round_no % len(rows)
        for row in rows[shift:] + rows[:shift]:
            for level in LEVELS:
                row.samples.setdefault(level, []).append(one_window(row, level))
        print(f"round {round_no + 1}/{ROUNDS} done", file=sys.stderr, flush=True)


def start_group(stack: ExitStack, work: Path, cores: int, opa_bin: str) -> list[Row]:
    """Raw OPA and ``serve --workers N`` (N = 1, 2, 4, 8) pinned to the group's cores, all ready."""
    pin = ("taskset", "-c", GROUPS[cores], "env", f"GOMAXPROCS={cores}")
    rules, rego, opsgate = work / "rules", ROOT / "rego", str(Path(sys.executable).with_name("opsgate"))
    opa = start_opa(opa_bin, rego, work, pin=pin, name=f"opa-{cores}")
    stack.callback(opa.close)
    servers = [opa]
    for n in WORKERS:
        name = f"workers{n}-{cores}"
        server = start_service(name, opsgate, rules, rego, str(work / f"{name}.db"), work, opa_bin, False,
                               ("--workers", str(n)), pin=pin)  # fmt: skip
        stack.callback(server.close)
        servers.append(server)
    for server in servers:
        server.wait_ready(timeout=180)
    facts = work / "facts.json"
    status, answer = http("POST", servers[1].base + "/decide", facts.read_bytes())
    if status != 200:
        raise RuntimeError(f"POST /decide answered {status}: {answer}")
    result, explanation = answer["result"], answer["result"]["explanation"]
    ruleset = {k: explanation["ruleset"][k] for k in ("name", "version")}
    opa_input = {"input": {"ruleset": ruleset, "facts": result["context"], "proposal": explanation["proposal"]}}
    opa_body = work / f"opa-input-{cores}.json"
    opa_body.write_text(json.dumps(opa_input))
    rows = [Row(f"raw OPA, {cores} cores", opa, "/v1/data/opsgate/decision", opa_body)]
    services = zip(WORKERS, servers[1:], strict=True)
    return rows + [Row(f"--workers {n}, {cores} cores", s, "/decide", facts) for n, s in services]


def summary(rows: list[Row]) -> list[dict[str, Any]]:
    table = []
    for level in LEVELS:
        anchor = statistics.median(s["requests_per_s"] for s in rows[0].samples[level])
        for row in rows:
            medians = {k: round(statistics.median(s[k] for s in row.samples[level]), 3) for k in row.samples[level][0]}
            table.append({"scenario": row.name, "concurrency": level, **medians,
                          "ratio_to_opa": round(medians["requests_per_s"] / anchor, 3) if anchor else None,
                          "rounds": [round(s["requests_per_s"], 1) for s in row.samples[level]]})  # fmt: skip
    return table


def print_table(table: list[dict[str, Any]]) -> None:
    print(f"{'scenario':<24} {'c':>4} {'req/s':>8} {'p99 ms':>8} {'x OPA':>6} {'srv cores':>9} {'wrk cores':>9} "
          f"{'svc us':>7} {'opa us':>7} {'escalated':>9}")  # fmt: skip
    for e in table:
        print(f"{e['scenario']:<24} {e['concurrency']:>4} {e['requests_per_s']:>8.0f} {e['p99_ms']:>8.1f} "
              f"{e['ratio_to_opa']:>6.2f} {e['server_cores']:>9.1f} {e['wrk_cores']:>9.2f} {e['service_us']:>7.0f} "
              f"{e['opa_us']:>7.0f} {e['escalated_share']:>9.1%}")  # fmt: skip


def run_groups(opa_bin: str) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = []
    for cores in GROUPS:
        with tempfile.TemporaryDirectory(prefix="opsgate-multicore-") as tmp, ExitStack() as stack:
            work = Path(tmp)
            (work / "rules").mkdir()
            shutil.copy(rulesets.OPS, work / "rules" / "ops.yaml")
            (work / "facts.json").write_text(json.dumps(FACTS))
            rows = start_group(stack, work, cores, opa_bin)
            print(f"{cores} cores: servers ready", file=sys.stderr, flush=True)
            measure(rows)
            table += summary(rows)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    parser.add_argument("--opa-bin", default=os.environ.get("OPSGATE_OPA_BIN"), help="the opa binary")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    reason = why_not(len(os.sched_getaffinity(0)), shutil.which("taskset") is not None, shutil.which("wrk") is not None)
    if reason:
        print(reason)
        return 0
    opa_bin = find_opa(args.opa_bin)
    started, host = time.monotonic(), machine()
    table = run_groups(opa_bin)
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "python -m bench.multicore",
              "machine": host, "versions": versions(opa_bin), "rounds": ROUNDS, "seconds": SECONDS,
              "wall_seconds": round(time.monotonic() - started), "rows": table}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem, n = time.strftime("%Y-%m-%d") + "-multicore", 1
    path = args.out / f"{stem}.json"
    while path.exists():
        n += 1
        path = args.out / f"{stem}-{n}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print_table(table)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The decision log's write path alone, as ``serve --workers N`` drives it: N processes appending
to one SQLite file, each with C concurrent appenders, for S seconds; appends per second and the
latency of one append (median, p99), medians over rounds.

    python -m bench.logpath                      # 1, 2 and 4 processes, 32 appenders each
    python -m bench.logpath --processes 4 --tree ../previous   # the same, from another checkout too

With ``--tree`` given, each round runs every tree in turn on a fresh file, so a before and an after
share the machine's load.  No HTTP, no OPA, no rules: what the file's write lock costs the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.servers import in_tree

ROOT = Path(__file__).resolve().parent.parent

# one writer process: C appenders append real decision records for S seconds; prints its figures as JSON
WRITER = r"""
import asyncio, json, sys, time
from service.adapters.store import open_log
import msgspec
from service.domain.record import Record

RECORD = sys.stdin.buffer.read()

async def appender(log, first, stop, latencies):
    n = first
    while time.monotonic() < stop:
        record = msgspec.json.decode(RECORD.replace(b"DECISION-ID", f"{n:032d}".encode()), type=Record)
        started = time.perf_counter()
        await log.records.append(record)
        latencies.append(time.perf_counter() - started)
        n += 1

async def main(log, writer, appenders, seconds):
    latencies = []
    stop = time.monotonic() + seconds
    await asyncio.gather(*(appender(log, writer * 10**9 + i * 10**6, stop, latencies) for i in range(appenders)))
    return latencies

db, writer, appenders, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
log = open_log(db, f"w-{writer}")
try:
    latencies = sorted(asyncio.run(main(log, writer, appenders, seconds)))
finally:
    log.close()
print(json.dumps({"appends": len(latencies), "p50": latencies[len(latencies) // 2],
                  "p99": latencies[int(len(latencies) * 0.99)]}))
"""


def record_json() -> bytes:
    """A decision record as /decide logs it, with DECISION-ID where each append puts its own id."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.test_decision_log_store import decision

    return json.dumps(decision(0, decision_id="DECISION-ID")).encode()


def one_round(tree: Path, processes: int, appenders: int, seconds: float, work: Path) -> dict[str, float]:
    db = work / f"log-{os.getpid()}-{tree.name}-{processes}.db"
    child = in_tree(tree, dict(os.environ))  # that tree's package, whichever checkout this runs from
    subprocess.run([sys.executable, "-c", "import sys; from service.adapters.store import open_log; "
                    "open_log(sys.argv[1], 'setup').close()", str(db)], check=True, **child)  # fmt: skip
    body = record_json()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(n), str(appenders), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            **child,
        )  # fmt: skip
        for n in range(processes)
    ]
    outs = [json.loads(proc.communicate(body, timeout=seconds + 120)[0]) for proc in procs]
    for suffix in ("", "-wal", "-shm", ".writer-lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return {
        "appends_per_s": sum(out["appends"] for out in outs) / seconds,
        "p50_ms": statistics.median(out["p50"] for out in outs) * 1000,
        "p99_ms": max(out["p99"] for out in outs) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--appenders", type=int, default=32, help="concurrent appends per process")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to measure too")
    parser.add_argument("--dir", type=Path, default=None, help="where the log files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    trees = [ROOT, *(tree.resolve() for tree in args.tree)]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="opsgate-logpath-", dir=args.dir) as work:
        for _ in range(args.rounds):
            for processes in args.processes:
                for tree in trees:
                    figures = one_round(tree, processes, args.appenders, args.seconds, Path(work).resolve())
                    results.setdefault((str(tree), processes), []).append(figures)
    print(f"{'tree':40} {'procs':>5} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8}   (medians of {args.rounds} rounds)")
    for (tree, processes), rounds in results.items():
        medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        rate, p50, p99 = medians["appends_per_s"], medians["p50_ms"], medians["p99_ms"]
        print(f"{tree:40} {processes:>5} {rate:>10.0f} {p50:>8.1f} {p99:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

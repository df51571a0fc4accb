"""Is memory flat?  ``python -m bench.memory`` (``make bench-memory``): RSS over 1,000,000 decisions.

Starts ``opsgate serve`` on loopback with the durable SQLite log and sends decisions through
``POST /decide/batch`` (1,000 varied ops items per request, a few clients at once) until the
count is reached, sampling the resident memory of the serving process and of its OPA child as it
goes.  The growth is measured from the sample after the warm-up (the first 5%: caches, the
engine's first sessions, allocator arenas) to the end; the issue's target is < 5 MB over 1M.
Writes bench/results/<date>-memory.json and prints the samples.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench.run import machine, versions
from bench.servers import HOST, ROOT, Server, http, start_service
from service.adapters.opa.binary import find_opa

TARGET_MB = 5.0


def items(count: int, offset: int) -> list[dict[str, Any]]:
    """``count`` ops facts that walk through every rule of rules/ops.yaml (dispatch, retry, reassign, escalate)."""
    out = []
    for n in range(offset, offset + count):
        out.append({
            "org_id": n % 97,
            "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1 + n % 4},
            "resource": {"id": f"worker-{n % 13:03d}", "capacity": 100,
                         "status": "unavailable" if n % 5 == 0 else "available"},
            "history": {"failures": n % 3, "latency": 100 + n % 900},
        })  # fmt: skip
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Driver:
    """``clients`` threads, each POSTing batches over one keep-alive connection until ``total`` are sent."""

    def __init__(self, port: int, total: int, batch: int, clients: int) -> None:
        self.port, self.total, self.batch, self.clients = port, total, batch, clients
        self.sent = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._bodies = [json.dumps({"items": items(batch, k * batch)}).encode() for k in range(16)]

    def _claim(self) -> bool:
        with self._lock:
            if self.sent >= self.total:
                return False
            self.sent += self.batch
            return True

    def _client(self, index: int) -> None:
        connection = HTTPConnection(HOST, self.port, timeout=60)
        for body in itertools.cycle(self._bodies[index :: self.clients] or self._bodies):
            if not self._claim():
                break
            connection.request("POST", "/decide/batch", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or json.loads(answer)["decided"] != self.batch:
                with self._lock:
                    self.errors += 1
        connection.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads


def run(args: argparse.Namespace) -> dict[str, Any]:
    opa_bin = find_opa(args.opa_bin)
    opsgate = str(Path(sys.executable).with_name("opsgate"))
    with tempfile.TemporaryDirectory(prefix="opsgate-memory-") as tmp:
        work = Path(tmp)
        server: Server = start_service("memory", opsgate, ROOT / "rules", ROOT / "rego", str(work / "log.db"),
                                       work, opa_bin, log_off=False)  # fmt: skip
        try:
            server.wait_ready(timeout=120)
            opa_pid = http("GET", server.base + "/ready")[1]["opa"]["pid"]
            driver = Driver(server.port, args.decisions, args.batch, args.clients)
            samples: list[dict[str, Any]] = []
            started = time.monotonic()
            threads = driver.start()
            step = max(args.decisions // 20, args.batch)
            next_at = 0

            def sample() -> None:
                samples.append({"decisions": driver.sent, "seconds": round(time.monotonic() - started, 1),
                                "service_rss_kb": rss_kb(server.proc.pid), "opa_rss_kb": rss_kb(opa_pid)})  # fmt: skip
                print(json.dumps(samples[-1]), flush=True)

            while any(t.is_alive() for t in threads):
                if driver.sent >= next_at:
                    sample()
                    next_at += step
                time.sleep(0.05)
            for thread in threads:
                thread.join()
            sample()
            db_bytes = (work / "log.db").stat().st_size
        finally:
            server.close()
    base = next((s for s in samples if s["decisions"] >= args.decisions * 0.05), samples[0])
    end = samples[-1]
    growth_mb = (end["service_rss_kb"] - base["service_rss_kb"]) / 1024
    return {
        "command": "python -m bench.memory " + " ".join(sys.argv[1:]),
        "commit": _commit(),
        "machine": machine(),
        "versions": versions(opa_bin),
        "decisions": driver.sent,
        "errors": driver.errors,
        "batch": args.batch,
        "clients": args.clients,
        "seconds": end["seconds"],
        "log_db_mb": round(db_bytes / 2**20, 1),
        "baseline": base,
        "end": end,
        "service_growth_mb": round(growth_mb, 2),
        "opa_growth_mb": round((end["opa_rss_kb"] - base["opa_rss_kb"]) / 1024, 2),
        "target_mb": TARGET_MB,
        "met": growth_mb < TARGET_MB and driver.errors == 0,
        "samples": samples,
    }


def _commit() -> str:
    """The checkout measured: HEAD, marked when the tree had changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="items per POST /decide/batch")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--opa-bin", default=os.environ.get("OPSGATE_OPA_BIN"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / (time.strftime("%Y-%m-%d") + "-memory.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    verdict = "met" if result["met"] else "NOT met"
    print(f"{result['decisions']} decisions in {result['seconds']} s, {result['errors']} errors; service RSS "
          f"{result['baseline']['service_rss_kb'] / 1024:.1f} -> {result['end']['service_rss_kb'] / 1024:.1f} MB "
          f"(growth {result['service_growth_mb']} MB, target < {TARGET_MB:g}: {verdict}); "
          f"OPA growth {result['opa_growth_mb']} MB; wrote {path}")  # fmt: skip
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())

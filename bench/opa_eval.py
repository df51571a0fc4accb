"""OPA's own evaluation time per guardrail query: ``python -m bench.opa_eval``.

Starts the real ``opa run --server`` on loopback with the bundle the service builds from ``rego/``
(bench/servers.py's ``start_opa``), POSTs the same input N times over one keep-alive connection with
``?metrics=true`` and prints the median (and 10th/90th percentile) of ``timer_rego_query_eval_ns``: the
time OPA spends evaluating the query, without HTTP, JSON parsing or the service.  Every input is the
Operations ruleset's: ``allow`` is what the service sends OPA for the benchmark's facts (bench/run.py's
FACTS, the example of docs/authoring.md), ``deny`` breaks three policies and asks one approval at once.
``none`` names a ruleset without policies (what the entrypoint costs by itself).  ``--path`` asks
another document instead, e.g. ``guardrails/ops/min_confidence/deny``; ``--rego-dir`` given several
times starts one OPA per directory (e.g. a checkout of the previous version's ``rego/``), and the
queries to all of them take turns, so that before and after are measured under the same load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.servers import HOST, ROOT, start_opa
from service.adapters.opa.binary import find_opa

_RULESET = {"name": "ops", "version": "bench"}
_ALLOW = {
    "ruleset": _RULESET,
    "facts": {
        "org_id": 0,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
        "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
        "history": {"failures": 0, "latency": 500},
        "candidates": [],
    },
    "proposal": {
        "decision_type": "OPS.DISPATCH",
        "confidence": 0.85,
        "priority": "NORMAL",
        "actions": [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}],
        "rules": ["dispatch"],
    },
}
# min_confidence, reassign_target and retry_limit deny; autonomy_ceiling asks approval (L4 > L3)
_DENY = {
    **_ALLOW,
    "facts": {**_ALLOW["facts"], "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 3}},
    "proposal": {
        "decision_type": "OPS.RETRY",
        "confidence": 0.5,
        "priority": "NORMAL",
        "actions": [
            {"type": "REASSIGN", "autonomy": "L4", "resource_id": "worker-001", "target_id": "worker-001"},
            {"type": "RETRY", "autonomy": "L1", "resource_id": "worker-001", "backoff_seconds": 30},
        ],
        "rules": ["retry"],
    },
}
# a ruleset without policies: what the entrypoint costs by itself
_NONE = {**_ALLOW, "ruleset": {"name": "none", "version": "bench"}}
INPUTS: dict[str, dict[str, Any]] = {"allow": _ALLOW, "deny": _DENY, "none": _NONE}
DEFAULT_PATH = "opsgate/decision"


Case = tuple[int, str, dict[str, Any]]  # OPA's port, the document asked, the input


def measure(cases: list[Case], n: int) -> list[tuple[list[int], Any]]:
    """``n`` evaluation times (ns) and the result of each case, after as many warm-up rounds; the
    cases take turns, so that a busy machine slows each of them alike."""
    bodies = [json.dumps({"input": item}).encode() for _, _, item in cases]
    times: list[list[int]] = [[] for _ in cases]
    results: list[Any] = [None for _ in cases]
    connections = {port: http.client.HTTPConnection(HOST, port, timeout=10) for port, _, _ in cases}
    try:
        for round_ in range(2 * n):
            for i, ((port, path, _), body) in enumerate(zip(cases, bodies, strict=True)):
                connection = connections[port]
                connection.request("POST", f"/v1/data/{path}?metrics=true", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = json.loads(response.read())
                if response.status != 200:
                    raise RuntimeError(f"OPA answered {response.status} for {path}: {answer}")
                results[i] = answer.get("result")
                if round_ >= n:
                    times[i].append(int(answer["metrics"]["timer_rego_query_eval_ns"]))
    finally:
        for connection in connections.values():
            connection.close()
    return list(zip(times, results, strict=True))


def summary(times: list[int]) -> dict[str, float]:
    """Median, 10th and 90th percentile in microseconds."""
    deciles = statistics.quantiles(times, n=10)
    return {"median_us": statistics.median(times) / 1000, "p10_us": deciles[0] / 1000, "p90_us": deciles[-1] / 1000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.opa_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="measured queries per input (after as many warm-up)")
    parser.add_argument("--path", action="append", help=f"a document to ask (default: {DEFAULT_PATH}); repeatable")
    parser.add_argument("--rego-dir", type=Path, action="append", help="default: rego/; repeatable")
    parser.add_argument("--input", choices=sorted(INPUTS), action="append", help="default: every input")
    parser.add_argument("--show", action="store_true", help="print each input's result too")
    parser.add_argument("--opa-bin", default=os.environ.get("OPSGATE_OPA_BIN"), help="default: $OPSGATE_OPA_BIN")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dirs: list[Path] = args.rego_dir or [ROOT / "rego"]
    opa_bin = find_opa(args.opa_bin)
    with tempfile.TemporaryDirectory(prefix="opsgate-opa-eval-") as work, ExitStack() as stack:
        ports = []
        for i, rego in enumerate(dirs):
            (Path(work) / str(i)).mkdir()
            opa = start_opa(opa_bin, rego, Path(work) / str(i))
            stack.callback(opa.close)
            opa.wait_ready(30)
            ports.append(opa.port)
        names = [(d, p, i) for d in range(len(dirs)) for p in args.path or [DEFAULT_PATH] for i in args.input or INPUTS]
        found = measure([(ports[d], path, INPUTS[name]) for d, path, name in names], args.n)
        for (d, path, name), (times, result) in zip(names, found, strict=True):
            figures = summary(times)
            where = f"{dirs[d]}: " if len(dirs) > 1 else ""
            print(
                f"{where}{path} {name}: median {figures['median_us']:.1f} us "
                f"(p10 {figures['p10_us']:.1f}, p90 {figures['p90_us']:.1f}; n={len(times)})"
            )
            if args.show:
                print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

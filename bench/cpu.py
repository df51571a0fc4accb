"""CPU per decision: ``make bench-cpu`` / ``python -m bench.cpu [--ref GITREF]``.

Starts ``opsgate serve`` (the shipped Operations ruleset, a durable SQLite log, the rate limit off) as
``make bench`` does, drives ``POST /decide/ops`` with wrk at 64 connections for ``--seconds`` over
``--rounds`` rounds, and reads the utime + stime of the service's processes and of its OPA child from
``/proc`` before and after each window.  Prints service, OPA and all-in CPU µs per 2xx decision, the
medians over the rounds.

``--ref GITREF`` measures another commit side by side in the same run: a ``git worktree`` of it in a
temporary directory, served from its own source tree, its rounds interleaved with this tree's (the
order swapped every round), so that a change is measured against its base on the same machine at the
same time.  The ratio is this tree's median over the ref's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import usage, wrk
from bench.run import FACTS
from bench.servers import ROOT, Server, http, start_service
from service.adapters.opa.binary import find_opa

PATH = "/decide/ops"
KINDS = ("service_us", "opa_us", "all_in_us")
FIGURES = (*KINDS, "decisions_per_s", "p99_ms")  # a window's figures: its CPU, its 2xx rate and wrk's p99


@dataclass
class Side:
    """One source tree measured: its server and each round's figures."""

    name: str  # "this" or "ref": its files' names
    label: str  # as the report shows it
    tree: Path
    env: dict[str, str] = field(default_factory=dict)  # OPSGATE_* settings it is served with
    server: Server | None = None
    rounds: list[dict[str, float]] = field(default_factory=list)


def per_decision(cpu: usage.Cpu, decisions: int, ticks_per_s: int) -> dict[str, float] | None:
    """One window's CPU µs per 2xx decision: the service's processes, its OPA, and both; None without any."""
    if decisions <= 0:
        return None
    figures = (cpu.service, cpu.opa, cpu.service + cpu.opa)
    return {kind: ticks * 1e6 / ticks_per_s / decisions for kind, ticks in zip(KINDS, figures, strict=True)}


def medians(rounds: list[dict[str, float]]) -> dict[str, float | None]:
    """Each figure's median over the rounds, to 0.1 µs."""
    return {kind: round(statistics.median(r[kind] for r in rounds), 1) if rounds else None for kind in FIGURES}


def ratios(this: dict[str, float | None], ref: dict[str, float | None]) -> dict[str, float | None]:
    """This tree's median over the ref's, per figure (0.78: 22% less CPU per decision)."""
    return {kind: round(a / b, 3) if a is not None and b else None for kind, a, b in
            ((k, this[k], ref[k]) for k in FIGURES)}  # fmt: skip


def order(sides: list[Side], round_no: int) -> list[Side]:
    """The sides in the order a round measures them: swapped every round, so drift spreads over both."""
    shift = round_no % len(sides)
    return sides[shift:] + sides[:shift]


# --- running ----------------------------------------------------------------------------


def add_worktree(stack: ExitStack, ref: str, where: Path) -> Path:
    """A detached ``git worktree`` of ``ref`` at ``where``, removed on the way out."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), ref], check=True)
    stack.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                   check=False)  # fmt: skip
    return where


def start(stack: ExitStack, side: Side, work: Path, opa_bin: str) -> Server:
    """``opsgate serve`` from ``side.tree`` (its own code, ``rules/ops.yaml`` and ``rego/``)."""
    rules = work / f"{side.name}-rules"
    rules.mkdir()
    shutil.copy(side.tree / "rules" / "ops.yaml", rules / "ops.yaml")
    db = str(work / f"{side.name}.db")
    server = start_service(side.name, "", rules, side.tree / "rego", db, work, opa_bin, False, tree=side.tree,
                           env=side.env)  # fmt: skip
    stack.callback(server.close)
    return server


def check(server: Server) -> None:
    status, answer = http("POST", server.base + PATH, json.dumps(FACTS).encode())
    if status != 200 or not answer["result"]["explanation"]["guardrails"]["available"]:
        raise RuntimeError(f"{server.name}: POST {PATH} answered {status}: {answer}")


def window(server: Server, body: Path, connections: int, seconds: int) -> dict[str, float]:
    """One wrk window against ``server`` and the CPU it cost per 2xx decision."""
    before = usage.split_cpu(server.proc.pid, usage.process_table())
    report = wrk.run(server.base + PATH, body, connections, seconds)
    spent = usage.split_cpu(server.proc.pid, usage.process_table()) - before
    found = per_decision(spent, usage.successful(report.requests, report.non_2xx, 1), usage.ticks_per_second())
    if found is None:
        raise RuntimeError(f"{server.name}: no 2xx decision in a {seconds} s window")
    return {**found, "decisions_per_s": report.requests_per_s, "p99_ms": report.p99_ms}


def measure(sides: list[Side], args: argparse.Namespace, work: Path) -> None:
    body = work / "facts.json"
    body.write_text(json.dumps(FACTS))
    for side in sides:
        assert side.server is not None
        wrk.run(side.server.base + PATH, body, args.connections, args.warmup)
    for round_no in range(args.rounds):
        for side in order(sides, round_no):
            assert side.server is not None
            side.rounds.append(window(side.server, body, args.connections, args.seconds))
        line = "  ".join(f"{s.label} {s.rounds[-1]['service_us']:.0f}+{s.rounds[-1]['opa_us']:.0f} µs" for s in sides)
        print(f"round {round_no + 1}/{args.rounds}: {line}", file=sys.stderr, flush=True)


def report(sides: list[Side], args: argparse.Namespace) -> dict[str, object]:
    found: dict[str, object] = {s.label: {"median": medians(s.rounds), "rounds": s.rounds} for s in sides}
    print(f"CPU µs per 2xx decision, 2xx/s and p99, POST {PATH}, c={args.connections}, "
          f"{args.rounds} x {args.seconds} s (medians)")  # fmt: skip
    print(f"{'tree':<24}" + "".join(f"{k:>16}" for k in FIGURES))
    for side in sides:
        print(f"{side.label:<24}" + "".join(f"{medians(side.rounds)[k] or 0:>16.1f}" for k in FIGURES))
    if len(sides) == 2:
        found["ratio"] = ratios(medians(sides[0].rounds), medians(sides[1].rounds))
        print(f"{'ratio (this / ref)':<24}" + "".join(f"{found['ratio'][k] or 0:>16.3f}" for k in FIGURES))  # type: ignore[index]
    return found


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds of wrk per window (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each tree once per round (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk before the rounds (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--ref", help="a git ref measured side by side with this tree (e.g. main)")
    parser.add_argument("--ref-env", action="append", default=[], metavar="VAR=VALUE",
                        help="serve the ref with this variable too (repeatable); without --ref, the ref is this tree "
                        "served with them, e.g. --ref-env OPSGATE_GC_YOUNG=0")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--opa-bin", default=os.environ.get("OPSGATE_OPA_BIN"), help="the opa binary")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench-cpu installs it: apt-get install -y wrk)", file=sys.stderr)
        return 2
    opa_bin = find_opa(args.opa_bin)
    opa_bin = os.path.abspath(opa_bin) if os.sep in opa_bin else opa_bin  # the servers run inside their trees
    if any("=" not in item for item in args.ref_env):
        print(f"bench: --ref-env takes VAR=VALUE, got {args.ref_env}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-cpu-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        sides = [Side("this", "this tree", ROOT)]
        env = dict(item.split("=", 1) for item in args.ref_env)
        if args.ref or env:
            tree = add_worktree(stack, args.ref, work / "ref") if args.ref else ROOT
            label = " ".join([args.ref or "this tree", *args.ref_env])
            sides.append(Side("ref", label, tree, env))
        for side in sides:
            side.server = start(stack, side, work, opa_bin)
        for side in sides:
            assert side.server is not None
            side.server.wait_ready(timeout=180)
            check(side.server)
        measure(sides, args, work)
        found = report(sides, args)
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

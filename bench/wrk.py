"""Running wrk and reading its report (``wrk --latency``): pure parsing kept apart from the process."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

POST_SCRIPT = Path(__file__).with_name("post.lua")

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$")
_RATE = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)\s*$")
_TOTAL = re.compile(r"^\s*(\d+) requests in ")
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$")
_SOCKET_ERRORS = re.compile(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)\s*$")


@dataclass(frozen=True)
class WrkReport:
    requests_per_s: float
    requests: int
    percentiles_ms: dict[str, float]  # "50" -> 0.21, "99" -> 3.4
    non_2xx: int
    socket_errors: int

    @property
    def p50_ms(self) -> float:
        return self.percentiles_ms["50"]

    @property
    def p99_ms(self) -> float:
        return self.percentiles_ms["99"]


class WrkOutputError(ValueError):
    """wrk printed something without the figures a run must have."""


def duration_ms(value: str, unit: str) -> float:
    """``"1.23", "ms"`` -> 1.23; wrk prints us, ms, s (and m, h for very slow runs)."""
    return float(value) * _UNITS_MS[unit]


def parse(text: str) -> WrkReport:
    """The figures of one ``wrk --latency`` run; raises WrkOutputError when a needed one is missing."""
    percentiles: dict[str, float] = {}
    rate: float | None = None
    total, non_2xx, errors = 0, 0, 0
    for line in text.splitlines():
        if match := _PERCENTILE.match(line):
            key = match.group(1).removesuffix(".000")
            percentiles[key] = duration_ms(match.group(2), match.group(3))
        elif match := _RATE.match(line):
            rate = float(match.group(1))
        elif match := _TOTAL.match(line):
            total = int(match.group(1))
        elif match := _NON_2XX.match(line):
            non_2xx = int(match.group(1))
        elif match := _SOCKET_ERRORS.match(line):
            errors = sum(int(n) for n in match.groups())
    if rate is None or "50" not in percentiles or "99" not in percentiles:
        raise WrkOutputError(f"no Requests/sec or latency distribution in wrk output:\n{text}")
    return WrkReport(rate, total, percentiles, non_2xx, errors)


def run(
    url: str, body_file: Path, connections: int, seconds: int, wrk: str = "wrk", threads: int = 2,
    pin: tuple[str, ...] = (),
) -> WrkReport:  # fmt: skip
    """POST ``body_file`` to ``url`` for ``seconds`` over ``connections`` keep-alive connections; ``threads``:
    at most 2 by default (a 2-core machine: more wrk threads only steal from the server); ``pin``: a command
    prefix such as ``taskset -c 12-15``."""
    args = [*pin, wrk, "-t", str(min(connections, threads)), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "5s", "--latency", "-s", str(POST_SCRIPT), url]  # fmt: skip
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise WrkOutputError(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    return parse(done.stdout)

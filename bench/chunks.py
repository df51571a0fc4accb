"""µs per ``RuleEngine.match`` with and without the chunk pre-filter, side by side in one process.

``python -m bench.chunks [--rounds 7] [--matches 300]``: the shipped 5-rule ops ruleset and the benchmark's
1,000-rule variant (``bench/rulesets.py``), each loaded twice into one engine (pre-filter off and on);
rounds interleave the cells in a rotating order; each cell's figure is the median over rounds."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import rulesets
from bench.run import FACTS
from service.adapters.rules_engine.engine import LoadedRuleset, shared_engine
from service.authoring.rulesets import load_ruleset

#: Facts that a share of the generated rules key on (type, attempts, status), none of which fires.
KEYED_FACTS = {
    **FACTS,
    "process": {"type": "BILLING", "sla": 3600, "attempts": 2},
    "resource": {"id": "worker-001", "capacity": 100, "status": "unavailable"},
}


def _per_match_us(loaded: LoadedRuleset, facts: dict[str, Any], matches: int) -> float:
    engine = shared_engine()
    started = time.perf_counter()
    for _ in range(matches):
        engine.match(loaded, facts)
    return (time.perf_counter() - started) / matches * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--matches", type=int, default=300)
    args = parser.parse_args()
    engine = shared_engine()
    work = Path(tempfile.mkdtemp(prefix="opsgate-chunks-"))
    sources = {5: rulesets.OPS, 1000: rulesets.write_variant(1000, work) / "ops.yaml"}
    cells: dict[str, tuple[LoadedRuleset, dict[str, Any]]] = {}
    for size, path in sources.items():
        ruleset = load_ruleset(path, "rules/ops.yaml", [])
        for prefilter in (False, True):
            loaded = engine.load(ruleset, prefilter=prefilter)
            cases = [("bench facts", FACTS)] + ([("keyed facts", KEYED_FACTS)] if size == 1000 else [])
            for label, facts in cases:
                expected = engine.match(engine.load(ruleset, prefilter=False), facts)
                assert engine.match(loaded, facts) == expected, (size, prefilter, label)
                cells[f"{size} rules, {label}, pre-filter {'on' if prefilter else 'off'}"] = (loaded, facts)
    names = list(cells)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        _per_match_us(*cells[name], 20)
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            samples[name].append(_per_match_us(*cells[name], args.matches))
    for name in names:
        loaded, facts = cells[name]
        fact = shared_engine().fact(loaded, facts)  # with its derived values, as a decision asserts it
        kept = len(loaded.chunks) if loaded.prefilter is None else len(loaded.prefilter.chunks(fact))
        spread = f"{min(samples[name]):.0f}-{max(samples[name]):.0f}"
        median = statistics.median(samples[name])
        print(f"{name:48} {median:8.0f} µs/match  (rounds {spread}; chunks asserted {kept}/{len(loaded.chunks)})")
        if loaded.prefilter is not None:
            started = time.perf_counter()
            for _ in range(1000):
                loaded.prefilter.chunks(fact)
            print(f"{'':48} {(time.perf_counter() - started) * 1e3:8.1f} µs of it choosing the chunks")


if __name__ == "__main__":
    main()

"""bench/cpu.py's arithmetic: CPU per decision from a window's ticks, medians over rounds, the ratio."""

from __future__ import annotations

from pathlib import Path

from bench import cpu
from bench.usage import Cpu


def test_a_windows_ticks_become_microseconds_per_decision_for_service_opa_and_both() -> None:
    # 100 ticks a second: 50 ticks are 0.5 s = 500,000 µs, over 1,000 decisions 500 µs each
    assert cpu.per_decision(Cpu(service=50, opa=20), 1000, 100) == {
        "service_us": 500.0, "opa_us": 200.0, "all_in_us": 700.0,
    }  # fmt: skip


def test_a_window_without_a_decision_has_no_figure() -> None:
    assert cpu.per_decision(Cpu(service=50, opa=20), 0, 100) is None


def test_the_medians_are_taken_per_figure_over_the_rounds() -> None:
    rounds = [
        {"service_us": 800.0, "opa_us": 300.0, "all_in_us": 1100.0, "decisions_per_s": 900.0, "p99_ms": 90.0},
        {"service_us": 1000.0, "opa_us": 250.0, "all_in_us": 1250.0, "decisions_per_s": 700.0, "p99_ms": 120.0},
        {"service_us": 900.0, "opa_us": 400.0, "all_in_us": 1300.0, "decisions_per_s": 800.0, "p99_ms": 100.0},
    ]
    assert cpu.medians(rounds) == {
        "service_us": 900.0, "opa_us": 300.0, "all_in_us": 1250.0, "decisions_per_s": 800.0, "p99_ms": 100.0,
    }  # fmt: skip
    assert set(cpu.medians([]).values()) == {None}


def test_the_ratio_is_this_trees_median_over_the_refs() -> None:
    this = {"service_us": 805.0, "opa_us": 400.0, "all_in_us": 1205.0, "decisions_per_s": 1100.0, "p99_ms": 50.0}
    ref = {"service_us": 1031.0, "opa_us": 400.0, "all_in_us": None, "decisions_per_s": 1000.0, "p99_ms": 0.0}
    assert cpu.ratios(this, ref) == {
        "service_us": 0.781, "opa_us": 1.0, "all_in_us": None, "decisions_per_s": 1.1, "p99_ms": None,
    }  # fmt: skip


def test_the_trees_take_turns_going_first() -> None:
    sides = [cpu.Side("this", "this tree", Path(".")), cpu.Side("ref", "main", Path("."))]
    assert [s.name for s in cpu.order(sides, 0)] == ["this", "ref"]
    assert [s.name for s in cpu.order(sides, 1)] == ["ref", "this"]
    assert [s.name for s in cpu.order(sides, 2)] == ["this", "ref"]

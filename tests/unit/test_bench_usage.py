"""The benchmark's cost figures: /proc/<pid>/stat parsing, the process tree split into service and OPA, CPU µs
and log bytes per successful decision, and the targets' verdicts (issue 18, item 6)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import report, usage
from bench.usage import Cpu, ProcStat, Window


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int) -> str:
    # the 52 fields of proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime ...
    rest = ["S", str(ppid), "1", "1", "0", "-1", "4194304", "10", "0", "0", "0", str(utime), str(stime)]
    return f"{pid} ({comm}) " + " ".join(rest + ["7", "9"] + ["0"] * 35) + "\n"


def test_a_stat_line_gives_pid_name_parent_and_user_plus_system_ticks() -> None:
    assert usage.parse_stat(stat_line(4242, "python3", 17, 1234, 56)) == ProcStat(4242, "python3", 17, 1290)


def test_a_process_name_with_spaces_and_parentheses_does_not_shift_the_fields() -> None:
    # children's CPU (cutime, cstime: 7 and 9 above) is not the process's own
    assert usage.parse_stat(stat_line(9, "a (b) c)", 3, 100, 1)) == ProcStat(9, "a (b) c)", 3, 101)


def test_a_real_stat_line_of_this_process_parses(tmp_path: Path) -> None:
    own = usage.parse_stat(Path("/proc/self/stat").read_text())
    assert own.ticks >= 0 and own.ppid > 0


def test_the_tree_is_split_into_the_opa_children_and_the_rest() -> None:
    stats = [
        ProcStat(1, "systemd", 0, 5000),
        ProcStat(100, "opsgate", 1, 300),  # the supervisor of --workers 2
        ProcStat(101, "opsgate", 100, 2000),
        ProcStat(102, "opsgate", 100, 1900),
        ProcStat(201, "opa", 101, 700),
        ProcStat(202, "opa", 102, 650),
        ProcStat(300, "opa", 1, 4000),  # the benchmark's raw OPA: not this server's
        ProcStat(400, "wrk", 1, 999),
    ]
    assert usage.split_cpu(100, stats) == Cpu(300 + 2000 + 1900, 700 + 650)
    assert usage.split_cpu(101, stats) == Cpu(2000, 700)
    assert usage.split_cpu(101, stats, shared_opa=300) == Cpu(2000, 700 + 4000)  # --opa-url: that OPA is its OPA
    assert usage.split_cpu(300, stats) == Cpu(0, 4000)  # raw OPA alone
    assert usage.split_cpu(999, stats) == Cpu(0, 0)  # gone


def test_cpu_is_the_difference_of_two_samples() -> None:
    assert Cpu(1500, 900) - Cpu(1000, 400) == Cpu(500, 500)


def test_cpu_per_decision_is_ticks_in_microseconds_over_decisions() -> None:
    # 100 ticks a second: 55 ticks are 0.55 s; over 1,000 decisions, 550 µs each
    assert usage.us_per_decision(55, 1000, 100) == 550.0
    assert usage.us_per_decision(55, 0, 100) is None


def test_only_2xx_answers_are_decisions() -> None:
    assert usage.successful(requests=1000, non_2xx=350, items=1) == 650
    assert usage.successful(requests=12, non_2xx=2, items=100) == 1000  # batches of 100
    assert usage.successful(requests=3, non_2xx=5, items=1) == 0


def test_log_bytes_per_decision_is_the_growth_over_the_decisions() -> None:
    assert usage.bytes_per_decision(4096 * 1000, 4096 * 2025, 1000) == 4198.4
    assert usage.bytes_per_decision(8192, 8192, 0) is None


def test_a_cell_adds_its_windows_before_dividing() -> None:
    windows = [Window(Cpu(40, 20), 409_600, 1000, 1000, 10), Window(Cpu(80, 40), 819_200, 2000, 2000, 290)]
    figures = usage.totals(windows, ticks_per_s=100)
    # (40 + 80) ticks = 1.2 s of service CPU over 3,000 decisions: 400 µs; OPA 0.6 s: 200 µs
    assert figures == {
        "cpu_per_decision": {"service_us": 400.0, "opa_us": 200.0, "all_in_us": 600.0},
        "log_bytes_per_decision": 409.6,
        "escalated_share": 0.1,  # 300 of 3,000 logged
    }
    raw_opa = usage.totals([Window(Cpu(0, 31), 0, 1000)], ticks_per_s=100, opa_only=True)
    assert raw_opa == {"cpu_per_decision": {"service_us": None, "opa_us": 310.0, "all_in_us": 310.0},
                       "log_bytes_per_decision": None, "escalated_share": None}  # fmt: skip


def test_a_window_reads_the_log_s_size_and_its_escalations_from_a_real_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE log_entries (id INTEGER PRIMARY KEY, kind TEXT, execution_status TEXT, body TEXT)"
        )
        connection.executemany("INSERT INTO log_entries (kind, execution_status, body) VALUES (?, ?, ?)",
                               [("decision", "APPROVED", "x" * 100)] * 3)  # fmt: skip
    size = usage.log_size(f"sqlite:{db}")
    start, before = usage.log_position(str(db)), size()
    assert start == 3 and before % 4096 == 0
    with sqlite3.connect(db) as connection:
        rows = [("decision", "ESCALATED", "y" * 4000)] * 5 + [("decision", "APPROVED", "z")] * 15
        connection.executemany("INSERT INTO log_entries (kind, execution_status, body) VALUES (?, ?, ?)",
                               rows + [("version", None, "v")])  # fmt: skip
    assert usage.escalated_since(str(db), start) == (20, 5)  # the version entry is no decision
    assert size() - before >= 5 * 4000  # the committed WAL pages are counted


def test_opa_evaluation_is_the_median_of_its_own_metrics() -> None:
    answers = [{"result": {}, "metrics": {"timer_rego_query_eval_ns": ns}} for ns in (274_000, 30_000, 41_000)]
    assert usage.median_eval_us([*answers, {"result": {}}]) == 41.0
    assert usage.median_eval_us([]) is None


def row(scenario: str, level: int, rps: float, p99: float, all_in: float | None = None) -> dict[str, object]:
    return {"scenario": scenario, "concurrency": level, "available": True, "requests_per_s": rps,
            "decisions_per_s": rps * (100 if scenario == "batch-100" else 1), "p99_ms": p99,
            "cpu_per_decision": {"all_in_us": all_in}}  # fmt: skip


def test_each_target_is_met_or_not_met_with_its_figure_and_the_others_say_where_they_are_measured() -> None:
    table = [row("opa-rest", 8, 5000, 10), row("opa-rest", 64, 5000, 100),
             row("decide-sqlite", 8, 800, 25), row("decide-sqlite", 64, 1500, 90, all_in=823.0),
             row("batch-100", 8, 40, 300), row("rules-1000", 64, 1300, 120),
             row("decide-log-off", 64, 1600, 80)]  # fmt: skip
    checks = {c["target"].split(" ")[0] + str(i): c for i, c in enumerate(report.targets(table, {
        "opa_eval_us": 274.0, "log_bytes_per_decision": 1200.0}))}  # fmt: skip
    verdicts = [(c["measured"], c["met"]) for c in checks.values()]
    assert verdicts == [
        (0.3, False),  # 1,500 / 5,000 < 0.6
        (823.0, False),  # > 300 µs
        (274.0, False),  # > 40 µs
        (5.0, False),  # 4,000 / 800 < 10
        (2.5, False),  # 25 / 10 > 2
        (0.867, True),  # 1,300 / 1,500 >= 0.7
        (0.062, True),  # 1 - 1,500 / 1,600 <= 0.2
        (1200.0, True),  # <= 1,500 bytes
        (None, None),
        (None, None),
    ]
    lines = [report.verdict_line(c) for c in checks.values()]
    assert lines[1] == (
        "     NOT met: all-in CPU (service + its OPA) per decision, /decide SQLite log, c=64 <= 300 us"
        " (measured 823 us)"
    )
    assert lines[7].startswith("         met: SQLite log <= 1.5 KB per decision")
    assert lines[7].endswith("(measured 1200 bytes)")
    assert "bench-multicore" in lines[8] and lines[8].startswith("not measured")


def test_the_multicore_mode_says_why_it_measures_nothing_on_a_small_machine() -> None:
    from bench.multicore import why_not

    assert why_not(2, True, True) == (
        "bench.multicore: this machine gives 2 cores, it needs 16 (servers on 0-7, wrk on 12-15); nothing measured"
    )
    assert why_not(16, False, True) == "bench.multicore: taskset (util-linux) is missing; nothing measured"
    assert why_not(64, True, True) is None

"""Reading wrk's report (bench/wrk.py): pure parsing, no benchmark is run here."""

from __future__ import annotations

import pytest

from bench import wrk

REPORT = """Running 1s test @ http://127.0.0.1:18181/v1/data/opsgate/decision
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   257.07us  396.17us   3.92ms   93.50%
    Req/Sec     5.75k   730.08     6.86k    60.00%
  Latency Distribution
     50%  153.00us
     75%  209.00us
     90%  378.00us
     99%    2.30ms
  5722 requests in 1.00s, 1.17MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   5711.68
Transfer/sec:      1.17MB
"""


def test_the_latency_distribution_is_read_in_milliseconds_whatever_unit_wrk_prints() -> None:
    report = wrk.parse(REPORT)
    assert report.percentiles_ms == pytest.approx({"50": 0.153, "75": 0.209, "90": 0.378, "99": 2.3})
    assert (report.p50_ms, report.p99_ms) == pytest.approx((0.153, 2.3))


def test_throughput_total_and_failures_are_read() -> None:
    report = wrk.parse(REPORT)
    assert report.requests_per_s == 5711.68
    assert report.requests == 5722
    assert report.non_2xx == 4
    assert report.socket_errors == 3


def test_seconds_are_converted_to_milliseconds() -> None:
    assert wrk.duration_ms("1.50", "s") == 1500.0
    assert wrk.duration_ms("250.00", "us") == pytest.approx(0.25)


def test_a_report_without_the_latency_distribution_is_refused() -> None:
    without = "\n".join(line for line in REPORT.splitlines() if "%  " not in line)
    with pytest.raises(wrk.WrkOutputError, match="latency distribution"):
        wrk.parse(without)

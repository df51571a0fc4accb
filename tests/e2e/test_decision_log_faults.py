"""The decision log's faults against a real `opsgate serve`: PostgreSQL behind a forwarder that goes
silent (a blackhole), and a SQLite log that can no longer grow.  Each answer is a decision or a 503
`decision_log_error`, never a hang; /ready, the service log and /metrics say so; it recovers, and
every acknowledged decision is in a log that verifies."""

from __future__ import annotations

import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLE_FACTS, PG_SERVER, copy_ops_only, sql, verified
from tests.e2e.server import Server
from tests.forwarder import Forwarder

# small enough for a fast test: a commit stuck this long is broken, a connection attempt gives up
FAST_LOG_TIMEOUTS = {
    "OPSGATE_DB_WRITE_TIMEOUT_S": "1",
    "OPSGATE_DB_CONNECT_TIMEOUT_S": "1",
    "OPSGATE_DB_STATEMENT_TIMEOUT_S": "2",
    "OPSGATE_DB_KEEPALIVE_S": "1",
}
DEADLINE_S = 60.0  # generous: a loaded 2-core machine


@pytest.fixture
def forwarder() -> Iterator[Forwarder]:
    host_port = PG_SERVER.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    running = Forwarder(host, int(port or 5432))
    yield running
    running.close()


@pytest.fixture
def forwarded_url(pg_url: str, forwarder: Forwarder) -> str:
    """The test's schema on the real PostgreSQL, reached through the forwarder."""
    host_port = pg_url.split("@")[-1].split("/")[0]
    return pg_url.replace(host_port, f"127.0.0.1:{forwarder.port}", 1)


@pytest.fixture
def start(tmp_path: Path, opa_bin: str) -> Iterator[Callable[..., Server]]:
    rules, rego = copy_ops_only(tmp_path / "dirs")
    started: list[Server] = []

    def run(db: str, **env: str) -> Server:
        server = Server(tmp_path, rules, rego, opa_bin, db, **FAST_LOG_TIMEOUTS, **env)
        server.client.timeout = httpx.Timeout(30)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def decide(server: Server) -> httpx.Response:
    return server.client.post("/decide/ops", json=EXAMPLE_FACTS)


def code(response: httpx.Response) -> str | None:
    body: Any = response.json()
    return body.get("error", {}).get("code") if body.get("status") == "error" else None


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {deadline_s} s: {what}"
        time.sleep(0.1)


def ready_status(server: Server) -> int:
    return server.client.get("/ready").status_code


def logged(server: Server, decision_ids: list[str]) -> set[str]:
    rows = sql(server.db, "SELECT DISTINCT decision_id FROM log_entries")
    return {str(row[0]) for row in rows} & set(decision_ids)


def test_a_silent_postgresql_fails_decisions_with_503_and_recovers_once_it_answers(
    start: Callable[..., Server], forwarder: Forwarder, forwarded_url: str, opa_bin: str
) -> None:
    server = start(forwarded_url)
    acknowledged = [decide(server).json()["result"]["decision_id"] for _ in range(3)]
    forwarder.blackhole()
    failed = decide(server)  # the writer is stuck on the silent connection: broken at its deadline
    assert failed.status_code == 503, failed.text
    assert code(failed) == "decision_log_error"
    wait_for(lambda: ready_status(server) == 503, "/ready answers 503 while the log cannot commit")
    during = decide(server)
    assert (during.status_code, code(during)) == (503, "decision_log_error"), during.text
    forwarder.restore()

    def decided() -> bool:
        response = decide(server)
        if response.status_code == 200:
            acknowledged.append(response.json()["result"]["decision_id"])
            return True
        assert code(response) == "decision_log_error", response.text
        return False

    wait_for(decided, "a decision is answered again once PostgreSQL answers")
    wait_for(lambda: ready_status(server) == 200, "/ready answers 200 again")
    acknowledged += [decide(server).json()["result"]["decision_id"] for _ in range(3)]
    assert logged(server, acknowledged) == set(acknowledged)
    server.stop()
    verified(server.db.replace(f"127.0.0.1:{forwarder.port}", PG_SERVER.split("@")[-1].split("/")[0]), opa_bin)


def test_sigterm_stops_the_service_while_postgresql_is_silent(
    start: Callable[..., Server], forwarder: Forwarder, forwarded_url: str
) -> None:
    server = start(forwarded_url)
    assert decide(server).status_code == 200
    forwarder.blackhole()
    assert decide(server).status_code == 503  # the writer's connection was stuck
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(DEADLINE_S / 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"opsgate serve did not stop on SIGTERM while PostgreSQL was silent:\n{server.log_text()}")


def test_a_sqlite_log_that_cannot_grow_answers_503_logs_counts_and_is_not_ready(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    server = start(str(tmp_path / "decisions.db"))
    assert decide(server).status_code == 200
    wal = Path(server.db + "-wal")
    # the file size limit of the serving process stops the log file growing as a full disk would,
    # without privileges (a read-only mode bit does not stop root, nor a file already open)
    limit = wal.stat().st_size
    assert server.log_path.stat().st_size + 65536 < limit, "the service's own log must still be writable"
    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        answers = [decide(server) for _ in range(5)]
        assert [(a.status_code, code(a)) for a in answers] == [(503, "decision_log_error")] * 5
        assert ready_status(server) == 503
        metrics = server.client.get("/metrics").text
        assert 'opsgate_decision_log_errors_total{cause="io_error"} 5.0' in metrics
        assert "opsgate_decision_log_up 0.0" in metrics
        lines = [line for line in server.log_text().splitlines() if "cannot commit" in line]
        # rate-limited: one line a cause every 5 s, so the five failures (normally well within 5 s) give fewer
        assert 1 <= len(lines) < len(answers), lines
        assert "ERROR" in lines[0] and "opsgate.log" in lines[0]
        assert "(io_error): disk I/O error" in lines[0]
    finally:
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    # ready again with no decision to log: a load balancer sends none to a replica that is not ready
    wait_for(lambda: ready_status(server) == 200, "/ready answers 200 once the log can grow again")
    assert decide(server).status_code == 200
    assert "opsgate_decision_log_up 1.0" in server.client.get("/metrics").text

"""`opsgate serve --workers N`: N processes on one port, each its own OPA child and its own log chain."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLE_FACTS, REGO_DIR, RULES_DIR, opsgate, verified
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts
from tests.e2e.test_shadow_http import candidate


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _ready_writers(server: Server, within: float = 30.0) -> dict[str, Any]:
    """Worker name -> its /ready body, from as many /ready calls as it takes to meet both workers (or
    ``within`` seconds: a worker still starting on a loaded machine accepts no connection)."""
    seen: dict[str, Any] = {}
    deadline = time.monotonic() + within
    while len(seen) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=server.url, timeout=10) as fresh:  # a new connection: any worker may accept it
            body = fresh.get("/ready").json()
        seen[body["decision_log"]["writer"]] = body
    return seen


def _decide_many(server: Server, count: int) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as fresh:
            return fresh.post("/decide", json=EXAMPLE_FACTS)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def test_two_workers_share_the_port_each_with_its_own_opa_and_chain(tmp_path: Path, opa_bin: str) -> None:
    server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node")
    try:
        workers = _ready_writers(server)
        assert sorted(workers) == ["node-w0", "node-w1"]
        assert workers["node-w0"]["opa"]["pid"] != workers["node-w1"]["opa"]["pid"]

        answers = _decide_many(server, 80)
        assert [a.status_code for a in answers] == [200] * 80
        assert {a.json()["result"]["decision"]["decision_type"] for a in answers} == {"OPS.DISPATCH"}
        heads = {h["writer"]: h for h in server.client.get("/log/head").json()["chains"]}
        assert set(heads) <= {"node-w0", "node-w1"}
        assert sum(h["seq"] for h in heads.values()) == 80

        # a worker that dies is started again, on its own chain
        worker_pids = _children(server.proc.pid)
        assert len(worker_pids) == 2
        os.kill(worker_pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _children(server.proc.pid)
            if len(now) == 2 and worker_pids[0] not in now and len(_ready_writers(server, within=2.0)) == 2:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"worker not restarted; log: {server.log_text()[-2000:]}")
        assert [a.status_code for a in _decide_many(server, 20)] == [200] * 20
    finally:
        workers_before_stop = _children(server.proc.pid) if server.proc.poll() is None else []
        server.stop()  # SIGTERM to the supervisor stops every worker (and so every OPA child)
    assert server.proc.returncode == 0
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers_before_stop) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers_before_stop if _alive(pid)]
    assert "100 records verified, chain intact" in verified(server.db, opa_bin)


def test_with_workers_watch_reloads_every_worker(
    tmp_path: Path, opa_bin: str, ops_only_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_only_dirs
    server = Server(tmp_path, rules, rego, opa_bin, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node",
                    OPSGATE_WATCH="1", OPSGATE_WATCH_INTERVAL_S="0.2")  # fmt: skip
    try:
        workers = _ready_writers(server)
        assert sorted(workers) == ["node-w0", "node-w1"]
        first = workers["node-w0"]["version"]
        assert workers["node-w1"]["version"] == first

        original = (rules / "ops.yaml").read_text()
        confidence = "confidence: 0.90 - 0.05 * process.attempts"
        (rules / "ops.yaml").write_text(original.replace(confidence, confidence.replace("0.90", "0.80")))
        deadline = time.monotonic() + 30
        while True:
            versions = {writer: body["version"] for writer, body in _ready_writers(server).items()}
            if len(versions) == 2 and first not in versions.values():
                break
            assert time.monotonic() < deadline, f"not every worker reloaded: {versions}"
            time.sleep(0.2)
        assert versions["node-w0"] == versions["node-w1"]  # the same content: the same version id
        watching = [line for line in server.log_text().splitlines() if "opsgate.watch" in line and " watching " in line]
        assert len(watching) == 1  # worker 0 watches, and its reload moves both workers

        def served(_: int) -> tuple[str, float]:
            with httpx.Client(base_url=server.url, timeout=30) as fresh:
                result = fresh.post("/decide/ops", json=ops_facts(attempts=1)).json()["result"]
            return result["explanation"]["ruleset"]["version"], result["decision"]["confidence"]

        with ThreadPoolExecutor(4) as pool:
            answers = set(pool.map(served, range(20)))
        assert len(answers) == 1 and answers.pop()[1] == pytest.approx(0.75)  # 0.80 - 0.05 * 1
    finally:
        server.stop()


def test_a_bad_key_configuration_stops_serve_with_workers_at_once(tmp_path: Path, opa_bin: str) -> None:
    """The workers' apps are built before the fork: the error is serve's (exit 2), not a worker's crash loop."""
    environ = {**os.environ, "OPSGATE_API_KEYS": "ops:deploy:abc"}
    done = opsgate("serve", "--workers", "2", "--port", "0", "--db", str(tmp_path / "decisions.db"),
                   opa_bin=opa_bin, env=environ)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "opsgate: OPSGATE_API_KEYS: entry 1 ('ops'): unknown role(s) 'deploy'; "
        "the roles are decide, approve, author, audit, admin\n"
    )


def test_two_workers_serve_with_a_shadow_candidate(tmp_path: Path, opa_bin: str) -> None:
    # checking the candidate before the fork must not start the process's rule engine: a forked worker
    # would inherit an engine whose thread it does not have, and hang on its first ruleset
    shadow = candidate(tmp_path / "candidate")
    server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node",
                    OPSGATE_SHADOW=str(shadow))  # fmt: skip
    try:
        assert sorted(_ready_writers(server)) == ["node-w0", "node-w1"]
        answers = _decide_many(server, 8)
        assert [a.json()["result"]["execution"]["status"] for a in answers] == ["APPROVED"] * 8
    finally:
        server.stop()

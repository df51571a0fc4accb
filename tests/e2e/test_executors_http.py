"""Executors of approved actions against a real `opsgate serve` (real OPA, real SQLite) and a receiver of
the test's own on loopback: 1,000 approved decisions delivered exactly once per idempotency key through
30% failed calls, a receiver down for 5 s and a SIGKILL of the service; nothing for escalated, pending or
rejected decisions; a human-approved one only once its approval is committed; dead letters after N
attempts, shown in /metrics, /dashboard and the reviewer page; with two workers, each delivers its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REGO_DIR, RULES_DIR, sql, verified
from tests.e2e.server import JSON, Server
from tests.e2e.test_approvals_http import CALLER, ask
from tests.e2e.test_ops_decisions import ops_facts

SECRET = "executor-secret-for-the-test"
WRITER = "executors-test"
COUNT = 1000


def fails(key: str, call: int) -> bool:
    """Whether the receiver fails the ``call``-th call of ``key``: 30% of calls, by a hash (deterministic)."""
    return int(hashlib.sha256(f"{key}#{call}".encode()).hexdigest()[:8], 16) % 100 < 30


def outside_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral range: while the receiver is down, no outgoing connection
    of any process can be given its port, so it restarts on the same one."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(10_000, low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port between 10000 and {low}")


class Receiver:
    """An executor: checks the signature, fails as ``failing`` says, acts once per Idempotency-Key."""

    def __init__(self, failing: Callable[[str, int], bool] = fails) -> None:
        self.failing = failing
        self.changed = threading.Condition()
        self.done: dict[str, dict[str, Any]] = {}  # key -> the body it first acted on
        self.calls: Counter[str] = Counter()
        self.failed = self.duplicates = self.bad_signatures = 0
        self.port = outside_ephemeral_range()
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/act"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # its sender was killed mid-request: nothing to answer
                    return
                status, answer = receiver.answer(body, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)  # the same port after a restart
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()  # connections are refused from here on

    def answer(self, body: bytes, headers: Any) -> tuple[int, bytes]:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        key = headers["Idempotency-Key"]
        with self.changed:
            self.calls[key] += 1
            if not hmac.compare_digest(expected, headers["X-Opsgate-Signature"] or ""):
                self.bad_signatures += 1
                return 401, b"{}"
            if self.failing(key, self.calls[key]):
                self.failed += 1
                return 500, b'{"error": "try again"}'
            if key in self.done:
                self.duplicates += 1
            else:
                self.done[key] = json.loads(body)
                self.changed.notify_all()
            return 200, json.dumps({"status": "SUCCEEDED", "detail": f"ran {key}"}).encode()

    def wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, seconds), f"{what}: not within {seconds} s"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.stop()


def executors_file(tmp_path: Path, url: str, max_attempts: int, types: tuple[str, ...]) -> Path:
    entries = "".join(
        f"  {kind}: {{url: '{url}', secret_env: EXECUTOR_SECRET, max_attempts: {max_attempts}, timeout_s: 10}}\n"
        for kind in types
    )
    path = tmp_path / "executors.yaml"
    path.write_text(f"executors:\n{entries}backoff_s: 0.05\nmax_backoff_s: 0.5\npoll_s: 0.05\nbatch: 32\n")
    return path


def start(tmp_path: Path, opa_bin: str, config: Path) -> Server:
    return Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_EXECUTORS=str(config), OPSGATE_WRITER_ID=WRITER,
                  EXECUTOR_SECRET=SECRET)  # fmt: skip


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def outcomes(db: str) -> dict[str, int]:
    rows = sql(db, "SELECT decision_id, COUNT(*) FROM log_entries WHERE kind = 'outcome' GROUP BY decision_id")
    return {str(decision_id): int(n) for decision_id, n in rows}


def test_every_approved_action_is_delivered_and_recorded_once_through_failures_an_outage_and_a_kill(
    tmp_path: Path, opa_bin: str, receiver: Receiver
) -> None:
    config = executors_file(tmp_path, receiver.url, 100, ("TRIGGER_PROCESS", "OPEN_INCIDENT", "DEPLOY"))
    server = start(tmp_path, opa_bin, config)
    try:
        held = [ask(server, name)["decision_id"] for name in ("ranker", "scorer", "router")]  # PENDING_APPROVAL
        escalated = server.client.post("/decide/batch", json={"items": [ops_facts(attempts=3)] * 5}).json()
        denied_ids = [entry["result"]["decision_id"] for entry in escalated["results"]]
        assert {entry["result"]["execution"]["status"] for entry in escalated["results"]} == {"ESCALATED"}
        response = server.client.post("/decide/batch", json={"items": [ops_facts()] * COUNT}, timeout=60)
        approved = [entry["result"] for entry in response.json()["results"]]
        assert {r["execution"]["status"] for r in approved} == {"APPROVED"} and len(approved) == COUNT
        expected = {f"{r['decision_id']}:0" for r in approved}

        receiver.wait_until(lambda: len(receiver.done) >= 300, 60, "300 deliveries")
        receiver.stop()  # down for 5 s: every delivery meanwhile is refused and retried
        time.sleep(5)
        receiver.start()
        receiver.wait_until(lambda: len(receiver.done) >= 600, 60, "600 deliveries")
        server.proc.kill()  # SIGKILL mid-delivery
        server.proc.wait(10)
        server.stop()
        left = sql(server.db, "SELECT COUNT(*) FROM action_outbox WHERE state = 'PENDING'")[0][0]
        assert 0 < int(str(left)) < COUNT  # killed with deliveries still to make
        server = start(tmp_path, opa_bin, config)
        receiver.wait_until(lambda: expected <= receiver.done.keys(), 120, "every approved action")
        assert not {f"{i}:0" for i in held + denied_ids} & receiver.done.keys()  # nothing pending or escalated

        executed, rejected, pending = held
        assert server.client.post(f"/operations/decisions/{rejected}/reject", json={"reason": "not now"},
                                  headers={CALLER: "bob", **JSON}).status_code == 200  # fmt: skip
        assert server.client.post(f"/operations/decisions/{executed}/execute", json={"reason": "canary ok"},
                                  headers={CALLER: "bob", **JSON}).status_code == 200  # fmt: skip
        receiver.wait_until(lambda: f"{executed}:0" in receiver.done, 30, "the approved decision's action")
        wait_for(lambda: len(outcomes(server.db)) == COUNT + 1, 30, "every outcome recorded")
    finally:
        server.stop()

    assert receiver.done.keys() == expected | {f"{executed}:0"}  # never the rejected or pending one's
    assert receiver.done[f"{executed}:0"]["approved_by"] == "bob"
    assert receiver.done[f"{executed}:0"]["action"]["type"] == "DEPLOY"
    assert receiver.bad_signatures == 0 and receiver.failed > COUNT // 10
    assert outcomes(server.db) == {r["decision_id"]: 1 for r in approved} | {executed: 1}  # once each
    states = sql(server.db, "SELECT state, COUNT(*) FROM action_outbox GROUP BY state")
    assert [tuple(row) for row in states] == [("DELIVERED", COUNT + 1)]
    records = 3 + 5 + COUNT + 2 + COUNT + 1  # decisions, the two answers, one outcome per delivered action
    assert verified(server.db, opa_bin).splitlines()[0] == f"{records} records verified, chain intact"


def test_an_action_nobody_accepts_is_dead_after_its_attempts_and_shown_as_such(tmp_path: Path, opa_bin: str) -> None:
    receiver = Receiver(failing=lambda key, call: True)
    server = start(tmp_path, opa_bin, executors_file(tmp_path, receiver.url, 3, ("TRIGGER_PROCESS",)))
    try:
        response = server.client.post("/decide/batch", json={"items": [ops_facts()] * 2})
        ids = [entry["result"]["decision_id"] for entry in response.json()["results"]]
        wait_for(lambda: 'opsgate_executor_actions{state="DEAD"} 2.0' in server.client.get("/metrics").text, 30,
                 "two dead letters")  # fmt: skip
        board = server.client.get("/dashboard").json()
        assert board["executors"] == {"by_state": {"PENDING": 0, "DELIVERED": 0, "DEAD": 2}}
        page = server.client.get("/ui/dashboard")
        assert '<dd id="executor-actions">PENDING 0, DELIVERED 0, DEAD 2</dd>' in page.text
        shown = server.client.get(f"/decisions/{ids[0]}").json()
        (outcome,) = shown["outcomes"]
        assert outcome["record"]["outcome"] == {
            "status": "FAILED", "detail": f"not delivered after 3 attempts: POST {receiver.url}: answered 500",
        }  # fmt: skip
        record = outcome["record"]
        assert (record["action"]["state"], record["caller"]) == ("DEAD", "executor:TRIGGER_PROCESS")
        page = server.client.get(f"/ui/decisions/{ids[0]}")
        assert page.status_code == 200 and '<span class="status DEAD">DEAD</span>' in page.text
        assert 'opsgate_executor_attempts_total{action_type="TRIGGER_PROCESS",result="dead"} 2.0' in (
            server.client.get("/metrics").text
        )
    finally:
        server.stop()
        receiver.stop()
    assert receiver.calls == Counter({f"{i}:0": 3 for i in ids}) and receiver.done == {}


def test_without_executors_the_dashboard_shows_none_and_nothing_is_queued(server: Server) -> None:
    response = server.client.post("/decide/batch", json={"items": [ops_facts()]})
    assert response.json()["results"][0]["result"]["execution"]["status"] == "APPROVED"
    assert server.client.get("/dashboard").json()["executors"] is None
    assert 'id="executor-actions"' not in server.client.get("/ui/dashboard").text
    assert "opsgate_executor_actions{" not in server.client.get("/metrics").text
    assert sql(server.db, "SELECT COUNT(*) FROM action_outbox") == [(0,)]


def test_with_two_workers_each_worker_delivers_the_actions_it_queued(tmp_path: Path, opa_bin: str) -> None:
    receiver = Receiver(failing=lambda key, call: False)
    config = executors_file(tmp_path, receiver.url, 5, ("TRIGGER_PROCESS",))
    server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_EXECUTORS=str(config), OPSGATE_WRITER_ID=WRITER,
                    OPSGATE_WORKERS="2", EXECUTOR_SECRET=SECRET)  # fmt: skip
    try:
        ids = []
        for _ in range(20):  # new connections: the kernel spreads them over both workers
            with httpx.Client(base_url=server.url, timeout=10) as client:
                response = client.post("/decide/batch", json={"items": [ops_facts()] * 10})
                ids += [entry["result"]["decision_id"] for entry in response.json()["results"]]
        receiver.wait_until(lambda: len(receiver.done) == len(ids), 60, "every action")
        wait_for(lambda: len(outcomes(server.db)) == len(ids), 30, "every outcome recorded")
    finally:
        server.stop()
        receiver.stop()
    assert receiver.done.keys() == {f"{i}:0" for i in ids}
    writers = sql(server.db, "SELECT writer, COUNT(*) FROM action_outbox WHERE state = 'DELIVERED' GROUP BY writer")
    assert {str(w) for w, _ in writers} <= {f"{WRITER}-w0", f"{WRITER}-w1"} and sum(
        int(str(n)) for _, n in writers
    ) == 200
    rows = sql(server.db, "SELECT a.writer, e.writer FROM action_outbox a JOIN log_entries e "
                          "ON e.decision_id = a.decision_id AND e.kind = 'outcome'")  # fmt: skip
    assert all(queued == recorded for queued, recorded in rows)  # each outcome chained by the worker that queued it

"""The HTTP export sink against a receiver of the test's own: down at first (the lag shows on /ready
and /metrics, every decision is answered), then failing one call in three (retried with backoff):
every record arrives, signed, in order, with this writer's checkpoint file."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.domain.export import CheckpointMessage, Message, RecordMessage, decode, verify_stream
from tests.conftest import sql
from tests.e2e.hooks import HookReceiver
from tests.e2e.server import Server
from tests.e2e.test_export_nats import export_samples, wait_for
from tests.e2e.test_ops_decisions import ops_facts

SECRET = "hook-secret-for-the-test"
WRITER = "http-test"
COUNT = 30


class Receiver(HookReceiver):
    """Answers 503 while ``down``; then fails every third call with 500; refuses a bad signature 401."""

    def __init__(self) -> None:
        self.down = True
        self.flaky = True
        self.calls = self.failed = self.bad_signatures = 0
        self.accepted: list[tuple[str, Message]] = []  # (Idempotency-Key, message), in arrival order
        self.lock = threading.Lock()
        super().__init__()

    def answer(self, body: bytes, headers: Any) -> int:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        with self.lock:
            self.calls += 1
            if not hmac.compare_digest(expected, headers["X-Opsgate-Signature"] or ""):
                self.bad_signatures += 1
                return 401
            if self.down or (self.flaky and self.calls % 3 == 0):
                self.failed += 1
                return 503 if self.down else 500
            self.accepted.append((headers["Idempotency-Key"], decode(body)))
            return 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def test_the_http_sink_retries_until_every_record_arrives_signed_and_in_order(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str, receiver: Receiver
) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / f"20261204T000000Z-{WRITER}-0.json").write_text('{"tree_size": 0}')
    (checkpoints / "20261204T000000Z-another-7.json").write_text('{"tree_size": 7}')  # another writer's
    (checkpoints / f"20261204T000001Z-{WRITER}-5.json.tmp").write_text("{")  # not yet renamed into place
    config = tmp_path / "export.yaml"
    config.write_text(
        f"sinks:\n  - kind: http\n    name: hook\n    url: {receiver.url}\n    secret_env: HOOK_SECRET\n"
        "    attempts: 3\n    backoff_s: 0.02\n    max_backoff_s: 0.1\npoll_s: 0.1\nretry_max_s: 0.3\n"
    )
    server = Server(
        tmp_path, *ops_only_dirs, opa_bin, OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER,
        OPSGATE_CHECKPOINTS_DIR=str(checkpoints), HOOK_SECRET=SECRET,
    )  # fmt: skip
    try:
        response = server.client.post("/decide/batch", json={"items": [ops_facts()] * COUNT})
        assert (response.status_code, response.json()["decided"]) == (200, COUNT)  # the sink being down changes nothing
        down = wait_for(lambda: ready_when(server, lambda s: not s["ok"] and s["lag"] == COUNT), 10, "the lag")
        assert (down["exported_seq"], down["error"]) == (0, f"POST {receiver.url}: answered 503 (3 attempts)")
        assert export_samples(server, "hook") == {"opsgate_export_lag": COUNT, "opsgate_export_up": 0}
        receiver.down = False
        caught_up = lambda s: s["ok"] and s["lag"] == 0 and s["checkpoints"] == 1  # noqa: E731
        wait_for(lambda: ready_when(server, caught_up), 30, "the sink caught up")
        assert export_samples(server, "hook") == {"opsgate_export_lag": 0, "opsgate_export_up": 1}
    finally:
        server.stop()

    assert receiver.bad_signatures == 0 and receiver.failed > 3  # the down phase's and the flaky ones, retried
    records = [m for _, m in receiver.accepted if isinstance(m, RecordMessage)]
    assert [m.seq for m in records] == list(range(1, COUNT + 1))  # each once, in order
    assert [key for key, m in receiver.accepted if isinstance(m, RecordMessage)] == [
        f"{WRITER}:{m.seq}" for m in records
    ]
    shipped = [m for _, m in receiver.accepted if isinstance(m, CheckpointMessage)]
    assert [(m.name, m.body) for m in shipped] == [(f"20261204T000000Z-{WRITER}-0.json", '{"tree_size": 0}')]
    report = verify_stream([m for _, m in receiver.accepted])
    assert (report.ok, report.records, report.checkpoints) == (True, {WRITER: COUNT}, 1)


def ready_when(server: Server, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The hook sink's state on /ready (which stays 200 whatever the lag) once ``predicate`` holds."""
    response = server.client.get("/ready")
    assert response.status_code == 200
    state = dict(response.json()["export"]["hook"])
    return state if predicate(state) else None


def test_a_bad_export_config_stops_serve_naming_the_field(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str
) -> None:
    config = tmp_path / "export.yaml"
    config.write_text(
        "sinks:\n  - kind: http\n    name: hook\n    url: http://127.0.0.1:1/\n    secret_env: NOPE\n    retries: 3\n"
    )
    with pytest.raises(
        RuntimeError,
        match=r"server exited: .*export\.yaml: Object contains unknown field `retries` - at `\$\.sinks\[0\]`",
    ):
        Server(tmp_path, *ops_only_dirs, opa_bin, OPSGATE_EXPORT_CONFIG=str(config))


def test_with_two_workers_each_worker_exports_its_own_chain(
    tmp_path: Path, ops_only_dirs: tuple[Path, Path], opa_bin: str, receiver: Receiver
) -> None:
    receiver.down = receiver.flaky = False
    config = tmp_path / "export.yaml"
    config.write_text(
        f"sinks:\n  - {{kind: http, name: hook, url: '{receiver.url}', secret_env: HOOK_SECRET}}\npoll_s: 0.1\n"
    )
    server = Server(
        tmp_path, *ops_only_dirs, opa_bin, OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER,
        OPSGATE_WORKERS="2", HOOK_SECRET=SECRET,
    )  # fmt: skip

    def both_chains() -> list[tuple[object, ...]] | None:
        with httpx.Client(base_url=server.url) as fresh:  # a new connection: the kernel picks a worker
            assert fresh.post("/decide", json=ops_facts()).status_code == 200
        heads = sql(server.db, "SELECT writer, MAX(seq) FROM log_entries GROUP BY writer ORDER BY writer")
        return heads if len(heads) == 2 else None

    def all_received(heads: list[tuple[object, ...]]) -> bool:
        with receiver.lock:
            got = [(m.writer, m.seq) for _, m in receiver.accepted if isinstance(m, RecordMessage)]
        return all((writer, seq) in got for writer, seq in heads)

    try:
        heads = wait_for(both_chains, 30, "decisions on both workers")
        assert [writer for writer, _ in heads] == [f"{WRITER}-w0", f"{WRITER}-w1"]
        wait_for(lambda: all_received(heads), 20, "both chains exported")
    finally:
        server.stop()
    report = verify_stream([m for _, m in receiver.accepted])
    assert report.ok and report.records == {writer: seq for writer, seq in heads}
    assert report.first_seq == {f"{WRITER}-w0": 1, f"{WRITER}-w1": 1} and report.duplicates == 0

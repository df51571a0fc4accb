"""Reload, rollback and activate with `opsgate serve --workers 2`: every worker moves to the same version."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.server import JSON, Server
from tests.e2e.test_ops_decisions import ops_facts
from tests.e2e.test_reload_http import CONFIDENCE, RETRY_CONFIDENCE, Deciding

FRESH = {**JSON, "Connection": "close"}  # a new connection per request: either worker may accept it


def _workers(server: Server, count: int = 2, within: float = 60.0, **wanted: Any) -> list[dict[str, Any]]:
    """/ready's ``workers`` once it lists ``count`` workers matching every ``wanted`` condition (a worker
    still starting on a loaded machine has not written its roster yet)."""
    deadline = time.monotonic() + within
    while True:
        workers: list[dict[str, Any]] = server.client.get("/ready", headers=FRESH).json()["workers"]
        matching = [w for w in workers if all(test(w) for test in wanted.values())]
        if len(workers) == count and len(matching) == count:
            return workers
        assert time.monotonic() < deadline, f"workers {workers}; log: {server.log_text()[-3000:]}"
        time.sleep(0.05)


def _post(server: Server, path: str) -> httpx.Response:
    return server.client.post(path, headers=FRESH, timeout=120)


def test_twenty_reloads_with_two_workers_fail_no_request_and_every_worker_moves(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    text_a = (rules / "ops.yaml").read_text()
    text_b = text_a.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80"))
    server = start_server(rules, rego, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node", OPSGATE_REQUEST_TIMEOUT_S="0")
    version_a = _workers(server)[0]["version"]
    reloaded = []
    with Deciding(server, timeout=30, headers={"Connection": "close"}) as deciding:
        for n in range(20):
            (rules / "ops.yaml").write_text(text_b if n % 2 == 0 else text_a)
            response = _post(server, "/admin/reload")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["changed"] is True
            # answered once both workers serve it
            assert [(w["writer"], w["version"]) for w in body["workers"]] == [
                ("node-w0", body["version"]),
                ("node-w1", body["version"]),
            ]
            reloaded.append(body["version"])

    version_b = reloaded[0]
    assert reloaded == [version_b, version_a] * 10
    deciding.assert_each_answer_is_one_version(version_a, version_b)
    heads = {h["writer"]: h["seq"] for h in server.client.get("/log/head").json()["chains"]}
    assert sorted(heads) == ["node-w0", "node-w1"] and min(heads.values()) > 0  # both workers decided


def test_a_broken_reload_leaves_every_worker_and_rollback_activate_and_a_restart_move_them_all(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], log_db: str
) -> None:
    rules, rego = copied_dirs
    server = start_server(
        rules, rego, log_db, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node", OPSGATE_REQUEST_TIMEOUT_S="0"
    )
    version_a = _workers(server)[0]["version"]
    text = (rules / "ops.yaml").read_text()

    (rules / "ops.yaml").write_text(text.replace("when: history.failures > 0", "when: history.failures >> 0"))
    refused = _post(server, "/admin/reload")
    assert refused.status_code == 422, refused.text
    line = text[: text.index("when: history.failures > 0")].count("\n") + 1
    detail = refused.json()["error"]["details"][0]
    assert (detail["file"], detail["line"], detail["column"]) == ("rules/ops.yaml", line, 29)
    assert {w["version"] for w in _workers(server)} == {version_a}

    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    version_b = _post(server, "/admin/reload").json()["version"]
    back = _post(server, "/admin/rollback")
    assert back.status_code == 200, back.text
    assert (back.json()["version"], back.json()["previous"]) == (version_a, version_b)
    assert {w["version"] for w in back.json()["workers"]} == {version_a}
    assert {w["version"] for w in _workers(server)} == {version_a}
    again = _post(server, f"/admin/activate/{version_b[:10]}").json()
    assert [w["version"] for w in again["workers"]] == [version_b, version_b]

    page = server.client.get("/ui/rulesets", headers=FRESH)
    assert page.status_code == 200
    table = page.text[page.text.index('id="workers"') : page.text.index('id="versions"')]
    assert table.count(f"<code>{version_b[:12]}</code>") == 2 and "node-w0" in table and "node-w1" in table

    # a worker started again serves the version every worker serves, not the files on disk (version B)
    assert _post(server, "/admin/rollback").json()["version"] == version_a
    killed = next(w for w in _workers(server) if w["writer"] == "node-w1")["pid"]
    os.kill(killed, signal.SIGKILL)
    workers = _workers(server, pid=lambda w: w["pid"] != killed)
    assert [(w["writer"], w["version"]) for w in workers] == [("node-w0", version_a), ("node-w1", version_a)]
    for _ in range(6):
        decided = server.client.post("/decide", json=ops_facts(failures=1), headers={"Connection": "close"})
        result = decided.json()["result"]
        assert (result["explanation"]["guardrails"]["revision"], result["decision"]["confidence"]) == (
            version_a,
            CONFIDENCE["A"],
        )


def test_a_reload_whose_call_timed_out_still_moves_every_worker(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    # a reload checks and starts the version in both workers, one after the other: well over 0.3 s
    server = start_server(rules, rego, OPSGATE_WORKERS="2", OPSGATE_WRITER_ID="node", OPSGATE_REQUEST_TIMEOUT_S="0.3")
    version_a = _workers(server)[0]["version"]
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    abandoned = _post(server, "/admin/reload")
    assert abandoned.status_code == 503 and abandoned.json()["error"]["code"] == "request_timeout"
    workers = _workers(server, moved=lambda w: w["version"] != version_a)
    assert len({w["version"] for w in workers}) == 1
    result = server.client.post("/decide", json=ops_facts(failures=1), headers={"Connection": "close"}).json()
    assert result["result"]["decision"]["confidence"] == CONFIDENCE["B"]

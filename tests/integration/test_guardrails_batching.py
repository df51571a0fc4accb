"""Guardrails against the real OPA child: concurrent checks share queries, and fail closed together."""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.adapters.opa.guardrails import Guardrails
from service.authoring.policies import read_policies
from tests.conftest import REGO_DIR, signal_and_wait


def item(confidence: float, decision_type: str = "OPS.REASSIGN") -> dict[str, Any]:
    return {
        "ruleset": {"name": "ops", "version": "v1"},
        "facts": {"org_id": 0},
        "proposal": {"decision_type": decision_type, "confidence": confidence, "priority": "NORMAL",
                     "actions": [], "rules": ["r"]},
    }  # fmt: skip


CONFIDENCES = [0.5, 0.9, 0.59, 0.6, 0.1]  # min_confidence denies below 0.6


def test_concurrent_checks_share_queries_and_get_their_own_verdicts(opa_bin: str) -> None:
    async def scenario() -> None:
        guardrails = Guardrails(opa_bin, timeout=5.0, batch_window=0.05)
        await guardrails.start(read_policies(REGO_DIR), "rev-1")
        try:
            verdicts = await asyncio.gather(*(guardrails.check(item(c)) for c in CONFIDENCES * 8))
            assert guardrails.stats["items"] == 40
            assert guardrails.stats["queries"] < 40
            messages = [[v.message for v in verdict.violations] for verdict in verdicts]
            assert messages == [
                ["confidence 0.5 is below the minimum 0.6"], [], ["confidence 0.59 is below the minimum 0.6"], [],
                ["confidence 0.1 is below the minimum 0.6"],
            ] * 8  # fmt: skip
            assert all(v.available and v.revision == "rev-1" for v in verdicts)
            assert [v.allow for v in verdicts] == [False, True, False, True, False] * 8
            many = await guardrails.check_many([item(c) for c in CONFIDENCES])
            assert many == verdicts[:5]
        finally:
            await guardrails.close()

    asyncio.run(scenario())


def test_with_opa_dead_every_batched_check_is_unavailable(opa_bin: str) -> None:
    async def scenario() -> None:
        guardrails = Guardrails(opa_bin, timeout=0.5, batch_window=0.05, restart_backoff=30.0)
        await guardrails.start(read_policies(REGO_DIR), "rev-1")
        try:
            assert guardrails.process is not None and guardrails.process.pid is not None
            signal_and_wait(guardrails.process.pid, signal.SIGKILL)  # dead; the restart is 30 s away
            verdicts = await asyncio.gather(*(guardrails.check(item(0.9)) for _ in range(10)))
            many = await guardrails.check_many([item(0.9), item(0.5)])
            for verdict in [*verdicts, *many]:
                assert verdict.available is False and verdict.allow is False
                assert verdict.error is not None and "OPA" in verdict.error
        finally:
            await guardrails.close()

    asyncio.run(scenario())


class _Garbled(http.server.BaseHTTPRequestHandler):
    """An "OPA" that answers every query with truncated JSON."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"result": [{"allow": tr'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def fake_opa(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """The URL of an "OPA" on loopback that answers with ``handler``, for as long as the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreadable_answer_fails_every_item_closed_single_and_batch() -> None:
    async def scenario(url: str) -> None:
        guardrails = Guardrails(None, timeout=2.0, opa_url=url)
        await guardrails.start(read_policies(REGO_DIR), "rev-1")
        try:
            verdicts = [await guardrails.check(item(0.9)), *await guardrails.check_many([item(0.9), item(0.5)])]
        finally:
            await guardrails.close()
        assert [(v.available, v.allow) for v in verdicts] == [(False, False)] * 3
        assert [v.error for v in verdicts] == ["OPA's answer could not be read: Input data was truncated"] * 3

    with fake_opa(_Garbled) as url:
        asyncio.run(scenario(url))


class _BadLength(_Garbled):
    """An "OPA" whose answers carry a Content-Length that is not a number."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "many")
        self.end_headers()
        self.wfile.write(b'{"result": []}')


def test_any_failure_of_the_opa_exchange_fails_closed_and_counts_towards_the_breaker() -> None:
    async def scenario(url: str) -> None:
        guardrails = Guardrails(None, timeout=2.0, opa_url=url)
        await guardrails.start(read_policies(REGO_DIR), "rev-1")
        try:
            many = await guardrails.check_many([item(0.9), item(0.5)])
            one = await guardrails.check(item(0.9))
            failures = guardrails.breaker.stats().failures
        finally:
            await guardrails.close()
        assert [(v.available, v.allow) for v in [*many, one]] == [(False, False)] * 3
        assert [v.error for v in many] == [
            "guardrail query failed: ValueError(\"invalid literal for int() with base 10: 'many'\")"
        ] * 2
        assert failures == 2  # the batch and the single check, each one failed exchange

    with fake_opa(_BadLength) as url:
        asyncio.run(scenario(url))


def crafted_rego(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of rego/ whose entrypoint has ``old`` replaced by ``new``, and org 7 held to L1."""
    rego = tmp_path / "rego"
    shutil.copytree(REGO_DIR, rego)
    entrypoint = rego / "opsgate" / "opsgate.rego"
    text = entrypoint.read_text()
    assert old in text
    entrypoint.write_text(text.replace(old, new))
    (rego / "config" / "autonomy" / "data.json").write_text(
        json.dumps({"default_max_level": "L3", "orgs": {"7": "L1"}})
    )
    return rego


def held(confidence: float) -> dict[str, Any]:
    """An L2 action for org 7: the shipped autonomy_ceiling asks for approval."""
    actions = [{"type": "TRIGGER_PROCESS", "autonomy": "L2", "resource_id": "worker-001"}]
    return {**item(confidence, "OPS.DISPATCH"), "facts": {"org_id": 7}, "proposal": {
        "decision_type": "OPS.DISPATCH", "confidence": confidence, "actions": actions}}  # fmt: skip


ALL_CLEAR = '{"allow": true, "violations": [], "requires_approval": false, "approvals": []}'


def test_concurrent_checks_get_the_single_verdict_whatever_batch_rule_the_bundle_has(
    opa_bin: str, tmp_path: Path
) -> None:
    rego = crafted_rego(
        tmp_path, "_violations contains", f"batch := [{ALL_CLEAR} | some _ in input.items]\n\n_violations contains"
    )

    async def scenario() -> None:
        guardrails = Guardrails(opa_bin, timeout=5.0, batch_window=0.05)
        await guardrails.start(read_policies(rego), "rev-1")
        try:
            alone = await guardrails.check(held(0.9))
            assert alone.available and alone.allow and alone.requires_approval
            items = [held(0.9), held(0.5)] * 30
            concurrent = await asyncio.gather(*(guardrails.check(i) for i in items))
            assert guardrails.stats["queries"] < guardrails.stats["items"]  # grouped: the bundle's batch unused
            assert concurrent[::2] == [alone] * 30
            assert all(v.requires_approval and not v.allow for v in concurrent[1::2])
            assert await guardrails.check_many(items) == concurrent
        finally:
            await guardrails.close()

    asyncio.run(scenario())


def test_an_item_whose_evaluation_fails_fails_alone_in_a_grouped_query(opa_bin: str, tmp_path: Path) -> None:
    # a second definition of `decision` that conflicts with the first for one item only
    rego = crafted_rego(
        tmp_path, "_violations contains", 'decision := "another" if input.facts.boom\n\n_violations contains'
    )

    async def scenario() -> None:
        guardrails = Guardrails(opa_bin, timeout=5.0)
        await guardrails.start(read_policies(rego), "rev-1")
        try:
            boom = {**item(0.9), "facts": {"org_id": 0, "boom": True}}
            singles = [await guardrails.check(i) for i in (item(0.9), boom, item(0.5))]
            grouped = await guardrails.check_many([item(0.9), boom, item(0.5)])
        finally:
            await guardrails.close()
        assert grouped == singles
        assert [(v.available, v.allow) for v in grouped] == [(True, True), (False, False), (True, False)]
        assert grouped[1].error is not None and "eval_conflict_error" in grouped[1].error

    asyncio.run(scenario())

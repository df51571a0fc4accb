"""Guardrails against the real OPA child: concurrent checks share queries, and fail closed together."""

from __future__ import annotations

import asyncio
import http.server
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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

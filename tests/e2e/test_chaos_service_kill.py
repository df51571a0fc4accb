"""Chaos: SIGKILL the service while a client sends decisions at full speed, some of which wait for
approval; after a restart on the same database (a SQLite file, then PostgreSQL) nothing acknowledged
is lost, the acknowledged pending approvals are still pending, and the chain verifies."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import EXAMPLE_FACTS, sql, verified
from tests.e2e.chaos import record_chaos
from tests.e2e.server import Server

CLIENTS = 32
KILL_AFTER = 400  # acknowledged decisions before the SIGKILL
DEADLINE_S = 60.0


class Load:
    """What the client sent and what it was told."""

    def __init__(self) -> None:
        self.sent = 0
        self.acknowledged: list[str] = []
        self.pending: list[str] = []
        self.failed = 0  # connection refused or reset: never acknowledged
        self.killed_at: float | None = None


def request(n: int) -> tuple[str, dict[str, Any]]:
    """Every third request a deploy of a new model to half the traffic (it waits for approval)."""
    if n % 3 == 2:
        deploy = {"org_id": 3, "component": f"bot-{n}", "version": "v2", "scenario": "new_model", "traffic_pct": 50}
        return "/decide/deploy", deploy
    return "/decide", {**EXAMPLE_FACTS, "org_id": n, "history": {"failures": n % 2, "latency": 500}}


async def client(http: httpx.AsyncClient, load: Load, numbers: Any, kill: Callable[[], None]) -> None:
    for n in numbers:
        if load.killed_at is not None and time.monotonic() - load.killed_at > 1.0:
            return
        path, facts = request(n)
        load.sent += 1
        try:
            response = await http.post(path, json=facts)
        except httpx.TransportError:
            load.failed += 1
            if load.killed_at is not None:
                return
            continue
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        load.acknowledged.append(result["decision_id"])
        if result["execution"]["status"] == "PENDING_APPROVAL":
            load.pending.append(result["decision_id"])
        if len(load.acknowledged) == KILL_AFTER:
            kill()


def test_a_service_killed_under_load_loses_no_acknowledged_decision_or_pending_approval(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], opa_bin: str, log_db: str
) -> None:
    rules, rego = copied_dirs
    running = start_server(rules, rego, db=log_db, OPSGATE_APPROVAL_SWEEP_S="0.5")
    load = Load()

    def kill() -> None:
        os.kill(running.proc.pid, signal.SIGKILL)
        load.killed_at = time.monotonic()

    async def run() -> None:
        numbers = iter(range(1_000_000))
        limits = httpx.Limits(max_connections=CLIENTS)
        headers = {"X-Opsgate-Caller": "chaos-client"}
        async with httpx.AsyncClient(base_url=running.url, limits=limits, timeout=10, headers=headers) as http:
            workers = [client(http, load, numbers, kill) for _ in range(CLIENTS)]
            await asyncio.wait_for(asyncio.gather(*workers), DEADLINE_S)

    started = time.monotonic()
    asyncio.run(run())
    load_s = (load.killed_at or time.monotonic()) - started
    assert running.proc.wait(10) == -signal.SIGKILL
    assert len(load.acknowledged) >= KILL_AFTER
    assert load.pending

    restart_started = time.monotonic()
    restarted = start_server(rules, rego, db=running.db, OPSGATE_APPROVAL_SWEEP_S="0.5")
    restart_s = time.monotonic() - restart_started
    logged = {str(row[0]) for row in sql(restarted.db, "SELECT decision_id FROM log_entries WHERE kind = 'decision'")}
    lost = [decision_id for decision_id in load.acknowledged if decision_id not in logged]
    assert lost == []
    for decision_id in load.acknowledged[:: max(1, len(load.acknowledged) // 20)]:  # and over HTTP, a sample
        assert restarted.client.get(f"/decisions/{decision_id}").status_code == 200, decision_id
    listed = restarted.client.get("/operations/decisions/pending", params={"limit": "500"}).json()
    still_pending = {item["decision_id"] for item in listed["items"]}
    assert len(still_pending) < 500  # the whole queue fitted in one page
    assert [d for d in load.pending if d not in still_pending] == []
    verify_report = verified(restarted.db, opa_bin)
    records = int(verify_report.split()[0])
    assert records >= len(load.acknowledged)

    record_chaos(
        "service_kill_postgresql" if "://" in log_db else "service_kill",
        {
            "store": "postgresql" if "://" in log_db else "sqlite",
            "clients": CLIENTS,
            "requests_sent": load.sent,
            "acknowledged": len(load.acknowledged),
            "acknowledged_pending": len(load.pending),
            "unanswered": load.failed,
            "load_before_kill_s": round(load_s, 3),
            "logged_after_restart": len(logged),
            "logged_but_unacknowledged": len(logged) - len(load.acknowledged),
            "lost": len(lost),
            "pending_after_restart": len(still_pending),
            "restart_to_ready_s": round(restart_s, 3),
            "log_verify": verify_report.splitlines()[0],
        },
    )

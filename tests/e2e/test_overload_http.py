"""Overload against a real server: past its bound of decisions in flight the service sheds (503
``overloaded`` with Retry-After) before any work, and load never turns into escalations.

The server's bound is 4 decisions in flight with no wait for room, driven by clients asking for 8
at a time.  Without admission control nothing is shed: that is what fails on a service without it.
The OPA query timeout is the tests' 2 s, not the 100 ms default: with 4 decisions in the event
loop at most, the work queued ahead of an OPA answer is a few milliseconds, and the default held
here on a 2-core machine at a load average of 6; but at 9-14 (two busy loops beside the other work)
OPA and the service each got a sliver of a core and some queries took over 100 ms, which no bound
inside the service can prevent.  The 100 ms figures under heavy load are in docs/production.md.
The assertions are on categories of answers and on counts the server must agree with, never on
timings or on how many requests were shed.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from service.adapters.store.bodies import register
from tests.e2e.server import Server
from tests.e2e.test_batch_http import APPROVED, LOW_CONFIDENCE
from tests.e2e.test_metrics_http import scrape, value

BOUND = 4
SINGLE_CLIENTS = 6  # each asks for one decision at a time
BATCH_CLIENTS = 1  # asks for a batch of BATCH at a time: 8 decisions asked for at once, twice the bound
BATCH = [APPROVED, LOW_CONFIDENCE]
# what the facts give when OPA answers: (decision type, execution status)
EXPECTED = {id(APPROVED): ("OPS.DISPATCH", "APPROVED"), id(LOW_CONFIDENCE): ("OPS.ESCALATE", "ESCALATED")}
DEADLINE_S = 90.0
ENOUGH = {"decided": 200, "shed": 20, "batch decided": 5}  # seen this much overload, stop
MOST_ANSWERS = 5000  # or stop after this many answers (without admission control, none is ever shed)


def decided_as_given(facts: dict[str, Any], result: dict[str, Any]) -> str:
    """'decided' for the decision the facts give with a verdict from OPA; else what it was instead."""
    guardrails = result["explanation"]["guardrails"]
    if not guardrails["available"]:
        return f"escalated without a verdict: {guardrails['error']}"
    answer = (result["decision"]["decision_type"], result["execution"]["status"])
    return "decided" if answer == EXPECTED[id(facts)] else f"decided otherwise: {answer}"


def shed_or_unexpected(response: httpx.Response) -> str:
    if response.status_code == 503 and response.json()["error"]["code"] == "overloaded":
        json = response.headers.get("content-type", "").startswith("application/json")
        return "shed" if response.headers.get("retry-after") == "1" and json else f"shed: {response.headers}"
    return f"unexpected: {response.status_code} {response.text[:300]}"


def single(client: httpx.Client, turn: int) -> list[str]:
    facts = (APPROVED, LOW_CONFIDENCE)[turn % 2]
    response = client.post("/decide", json=facts)
    if response.status_code == 200:
        return [decided_as_given(facts, response.json()["result"])]
    return [shed_or_unexpected(response)]


def batch(client: httpx.Client, _: int) -> list[str]:
    response = client.post("/decide/batch", json={"items": BATCH})
    if response.status_code != 200:
        return ["batch " + shed_or_unexpected(response)]
    results = [entry["result"] for entry in response.json()["results"]]
    answers = [decided_as_given(facts, result) for facts, result in zip(BATCH, results, strict=True)]
    return ["batch decided"] if answers == ["decided"] * len(BATCH) else [f"batch: {answers}"]


class Load:
    """Closed-loop clients on threads, each asking again as soon as it is answered, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, ask: Callable[[httpx.Client, int], list[str]], clients: int) -> None:
        for _ in range(clients):
            thread = threading.Thread(target=self._client, args=(ask,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _client(self, ask: Callable[[httpx.Client, int], list[str]]) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            turn = 0
            while not self.stop.is_set():
                try:
                    answers = ask(client, turn)
                except Exception as error:  # noqa: BLE001 - a failed request is a category of its own
                    answers = [f"request failed: {error!r}"]
                with self.lock:
                    self.seen.update(answers)
                turn += 1

    def counts(self) -> collections.Counter[str]:
        with self.lock:
            return self.seen.copy()

    def enough(self) -> bool:
        seen = self.counts()
        return all(seen[category] >= count for category, count in ENOUGH.items()) or seen.total() >= MOST_ANSWERS

    def finish(self) -> collections.Counter[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a client did not finish its last request within 60 s"
        return self.counts()


def logged(db: str) -> tuple[int, int]:
    """(decisions in the log, of which escalated because OPA did not answer in time)."""
    with sqlite3.connect(db) as connection:
        register(connection)
        total = connection.execute("SELECT count(*) FROM log_entries WHERE kind = 'decision'").fetchone()[0]
        late = connection.execute(
            "SELECT count(*) FROM log_entries "
            "WHERE kind = 'decision' AND opsgate_body(body) LIKE '%OPA did not answer%'"
        ).fetchone()[0]
    return int(total), int(late)


def test_twice_the_bound_in_flight_is_shed_with_503_and_never_escalated_for_an_opa_timeout(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(
        *copied_dirs,
        OPSGATE_MAX_IN_FLIGHT=str(BOUND),
        OPSGATE_ADMISSION_QUEUE_MS="0",
        OPSGATE_RATE_LIMIT="0",  # every client is the same caller here: its rate is not what is tested
    )
    load = Load(server.url)
    load.start(single, SINGLE_CLIENTS)
    load.start(batch, BATCH_CLIENTS)
    deadline = time.monotonic() + DEADLINE_S
    ready_while_shedding = None
    while not load.enough() and time.monotonic() < deadline:
        if ready_while_shedding is None and load.counts()["shed"]:
            ready_while_shedding = server.client.get("/ready").status_code
        time.sleep(0.05)
    seen = load.finish()
    print(f"overload answers: {dict(seen)}")

    expected = {"decided", "shed", "batch decided", "batch shed"}
    assert set(seen) <= expected, f"answers other than a decision as the facts give or 503 overloaded: {seen}"
    assert all(seen[category] >= count for category, count in ENOUGH.items()), (
        f"not enough overload in {MOST_ANSWERS} answers or {DEADLINE_S:g} s: {seen}"
    )
    assert ready_while_shedding == 200, "/ready must not depend on load"

    decisions = seen["decided"] + len(BATCH) * seen["batch decided"]
    assert logged(server.db) == (decisions, 0)  # every answered decision logged; none escalated for a late OPA
    samples = scrape(server)
    assert value(samples, "opsgate_shed_total") == seen["shed"] + seen["batch shed"]
    assert sum(v for (name, _), v in samples.items() if name == "opsgate_decisions_total") == decisions
    assert value(samples, "opsgate_in_flight") == 0
    assert value(samples, "opsgate_in_flight_limit") == BOUND

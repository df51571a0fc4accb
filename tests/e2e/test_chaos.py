"""Chaos under load: the OPA child SIGKILLed five times, then SIGSTOPped, while clients decide at full speed.

A real ``python -m service serve`` with its OPA child and SQLite log.  Every answer
is kept and checked against the log; the figures are printed and written to
tests/artifacts/chaos.json.  Waits are bounded; loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from service.adapters.store.bodies import register
from tests.conftest import signal_and_wait
from tests.e2e.chaos import record_chaos
from tests.e2e.server import Server
from tests.e2e.test_batch_http import APPROVED, MAX_ATTEMPTS, RETRY

CLIENTS = 4
MIX = [APPROVED, APPROVED, RETRY, APPROVED, MAX_ATTEMPTS]  # DISPATCH and RETRY approved; the rules escalate one
KILLS = 5
RESTART_BACKOFF_S = 0.5  # OPA is certainly down this long after a kill: nothing may be approved meanwhile
BREAKER_RECOVERY_S = 1.0
DEFAULT_RESTART_BACKOFF_S = 0.2  # the service's own default (the breaker's recovery time: 2 s)
RECOVERY_LIMIT_S = 5.0  # issue 5: normal decisions resume within 5 s of each kill
SETTINGS = {
    "OPSGATE_OPA_RESTART_BACKOFF_S": str(RESTART_BACKOFF_S),
    "OPSGATE_OPA_BREAKER_RECOVERY_S": str(BREAKER_RECOVERY_S),
    "OPSGATE_OPA_TIMEOUT_MS": "300",  # a loaded 2-core machine must not time out a healthy OPA
    "OPSGATE_RATE_LIMIT": "0",  # one caller at full speed: the rate limit is not what is tested
}


class Answer(msgspec.Struct):
    sent: float
    received: float
    status_code: int = 0  # 0: no HTTP answer at all
    decision_id: str = ""
    decision_type: str = ""
    execution: str = ""
    available: bool = False
    breaker: str | None = None
    guardrail_error: str | None = None
    transport_error: str | None = None


class Load:
    """Client threads posting decisions back to back; every answer (or transport error) is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[Answer] = []  # appended by the clients (list.append is atomic)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _client(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            turn = index
            while not self._stop.is_set():
                facts = MIX[turn % len(MIX)]
                turn += 1
                sent = time.monotonic()
                try:
                    response = client.post("/decide", json=facts)
                except httpx.TransportError as error:
                    self.answers.append(Answer(sent, time.monotonic(), transport_error=repr(error)))
                    continue
                self.answers.append(_answer(sent, time.monotonic(), response))

    def first(self, since: float, condition: Callable[[Answer], bool], within: float, what: str) -> Answer:
        """The first answer to a request sent at or after ``since`` that meets ``condition``, waiting
        at most ``within`` seconds for it."""
        deadline, seen = time.monotonic() + within, 0
        while time.monotonic() < deadline:
            answers = self.answers[:]
            for answer in answers[seen:]:
                if answer.sent >= since and condition(answer):
                    return answer
            seen = len(answers)
            time.sleep(0.02)
        raise AssertionError(f"no answer {what} within {within} s")


def _answer(sent: float, received: float, response: httpx.Response) -> Answer:
    if response.status_code != 200:
        return Answer(sent, received, response.status_code)
    result = response.json()["result"]
    guardrails = result["explanation"]["guardrails"]
    return Answer(
        sent, received, 200, result["decision_id"], result["decision"]["decision_type"],
        result["execution"]["status"], guardrails["available"], guardrails["breaker"], guardrails["error"],
    )  # fmt: skip


def normal(answer: Answer) -> bool:
    return answer.execution == "APPROVED" and answer.decision_type != "OPS.ESCALATE"


def breaker_open(answer: Answer) -> bool:
    return answer.breaker == "open"


def timed_out_query(answer: Answer) -> bool:
    return (answer.guardrail_error or "").startswith("OPA did not answer within")


def opa_status(server: Server) -> dict[str, Any]:
    return server.client.get("/ready").json()["opa"]  # type: ignore[no-any-return]


def assert_every_answer_is_logged_and_fails_closed(db: str, answers: list[Answer]) -> None:
    """No transport error, no 5xx; each answer is in the log as answered; nothing approved without OPA."""
    assert [a.transport_error for a in answers if a.transport_error] == []
    assert sorted({a.status_code for a in answers}) == [200]
    logged = _logged(db)
    for answer in answers:
        record = logged[answer.decision_id]
        assert (record["decision"]["decision_type"], record["execution"]["status"]) == (
            answer.decision_type, answer.execution,
        )  # fmt: skip
        assert (record["guardrails"]["available"], record["guardrails"]["breaker"]) == (
            answer.available, answer.breaker,
        )  # fmt: skip
        if answer.execution == "APPROVED":  # only ever on a real verdict, asked through a closed (or probing) breaker
            assert answer.available and answer.breaker in ("closed", "half_open"), answer
        if not answer.available:
            assert (answer.decision_type, answer.execution) == ("OPS.ESCALATE", "ESCALATED"), answer


def _logged(db: str) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        register(connection)
        query = "SELECT decision_id, opsgate_body(body) FROM log_entries WHERE kind = 'decision'"
        rows = connection.execute(query).fetchall()
    return {decision_id: json.loads(body) for decision_id, body in rows}


def during(answers: list[Answer], start: float, end: float) -> list[Answer]:
    """Answers to requests sent at or after ``start`` and answered before ``end``."""
    return [a for a in answers if a.sent >= start and a.received < end]


@pytest.mark.parametrize("defaults", [False, True], ids=["backoff-0.5s-recovery-1s", "default-backoff-and-recovery"])
def test_opa_killed_five_times_under_load_fails_closed_and_recovers_within_five_seconds(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server], defaults: bool
) -> None:
    restart_backoff_s = DEFAULT_RESTART_BACKOFF_S if defaults else RESTART_BACKOFF_S
    settings = {**SETTINGS}
    if defaults:  # the restart backoff and the breaker's recovery time as the service ships them
        del settings["OPSGATE_OPA_RESTART_BACKOFF_S"], settings["OPSGATE_OPA_BREAKER_RECOVERY_S"]
    server = start_server(*copied_dirs, **settings)
    kills: list[tuple[float, Answer, Answer]] = []  # (when, the first answer with the breaker open, the first approved)
    pids: list[int] = []
    with Load(server.url) as load:
        load.first(0.0, normal, within=30, what="approved before the first kill")
        for _ in range(KILLS):
            pid = opa_status(server)["pid"]
            assert pid not in pids
            pids.append(pid)
            signal_and_wait(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            refused = load.first(killed_at, breaker_open, 30, "with the breaker open")
            resumed = load.first(killed_at, normal, 30, "approved after the kill")
            kills.append((killed_at, refused, resumed))
            time.sleep(0.5)  # normal traffic before the next kill
        time.sleep(0.2)
    answers = load.answers[:]
    opa = opa_status(server)

    assert_every_answer_is_logged_and_fails_closed(server.db, answers)
    for killed_at, refused, resumed in kills:
        certainly_down = during(answers, killed_at, killed_at + restart_backoff_s)
        assert certainly_down and not [a for a in certainly_down if a.execution == "APPROVED"]
        assert (refused.execution, resumed.available) == ("ESCALATED", True)
        assert resumed.breaker in ("half_open", "closed")  # a probe, or the breaker already closed by one
    assert (opa["up"], opa["restarts"], opa["breaker"]["state"]) == (True, KILLS, "closed")
    assert opa["breaker"]["opened"] >= KILLS
    recoveries = [round(resumed.received - killed_at, 3) for killed_at, _, resumed in kills]
    outages = [during(answers, killed_at, resumed.received) for killed_at, _, resumed in kills]
    record_chaos(
        "opa_killed_under_load_defaults" if defaults else "opa_killed_under_load",
        {
            "requests": len(answers),
            "answers": sum(1 for a in answers if a.status_code == 200),
            "transport_errors": sum(1 for a in answers if a.transport_error),
            "kills": KILLS,
            "escalations_during_outages": [sum(1 for a in o if a.execution == "ESCALATED") for o in outages],
            "answered_with_breaker_open": sum(1 for a in answers if breaker_open(a)),
            "approved_during_outages": sum(1 for o in outages for a in o if a.execution == "APPROVED"),
            "recovery_s": recoveries,
            "max_recovery_s": max(recoveries),
            "breaker_opened": opa["breaker"]["opened"],
            "opa_restarts": opa["restarts"],
        },
    )
    assert max(recoveries) < RECOVERY_LIMIT_S, recoveries


def test_opa_stopped_under_load_times_out_opens_the_breaker_and_recovers_after_sigcont(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs, **SETTINGS)
    pid = opa_status(server)["pid"]
    stop_for = 4.0  # well under the 10 s after which the supervisor would restart an unhealthy child
    with Load(server.url) as load:
        load.first(0.0, normal, within=30, what="approved before the stop")
        signal_and_wait(pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            timed_out = load.first(stopped_at, timed_out_query, stop_for, "timed out")
            refused = load.first(stopped_at, breaker_open, stop_for, "with the breaker open")
            while time.monotonic() < stopped_at + stop_for and opa_status(server)["up"]:
                time.sleep(0.05)
            seen_down = opa_status(server)
            time.sleep(max(0.0, stopped_at + stop_for - time.monotonic()))  # hung for the whole period
        finally:
            os.kill(pid, signal.SIGCONT)
        continued_at = time.monotonic()
        resumed = load.first(continued_at, normal, 30, "approved after SIGCONT")
        time.sleep(0.5)
    answers = load.answers[:]
    deadline = time.monotonic() + 10  # the next health check (every second) sees it answering again
    while not (opa := opa_status(server))["up"] and time.monotonic() < deadline:
        time.sleep(0.05)

    assert_every_answer_is_logged_and_fails_closed(server.db, answers)
    stopped = during(answers, stopped_at, continued_at)
    assert stopped and not [a for a in stopped if a.execution == "APPROVED"]
    assert timed_out.execution == refused.execution == "ESCALATED"
    # while OPA hangs the breaker is open, or half-open with a probe hanging in turn
    assert (seen_down["up"], seen_down["breaker"]["state"] in ("open", "half_open")) == (False, True)
    assert seen_down["breaker"]["opened"] >= 1
    assert (opa["up"], opa["pid"], opa["restarts"], opa["breaker"]["state"]) == (True, pid, 0, "closed")
    record_chaos(
        "opa_stopped_under_load",
        {
            "requests": len(answers),
            "answers": sum(1 for a in answers if a.status_code == 200),
            "transport_errors": sum(1 for a in answers if a.transport_error),
            "stopped_s": round(continued_at - stopped_at, 3),
            "escalations_during_outage": sum(1 for a in stopped if a.execution == "ESCALATED"),
            "timed_out_during_outage": sum(1 for a in stopped if timed_out_query(a)),
            "answered_with_breaker_open": sum(1 for a in stopped if breaker_open(a)),
            "first_timeout_after_s": round(timed_out.received - stopped_at, 3),
            "breaker_open_after_s": round(refused.received - stopped_at, 3),
            "recovery_after_sigcont_s": round(resumed.received - continued_at, 3),
            "breaker_opened": opa["breaker"]["opened"],
        },
    )

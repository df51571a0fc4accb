"""Fail closed: with OPA dead or slow, the answer is still 200 and an escalation; OPA comes back."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import signal_and_wait
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts, result_of


def test_killing_the_opa_child_fails_closed_then_recovers_within_five_seconds(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    # A 1 s restart backoff keeps the "OPA is down" window open for the first request.
    server = start_server(*copied_dirs, OPSGATE_OPA_RESTART_BACKOFF_S="1.0")
    assert result_of(server, ops_facts())["execution"]["status"] == "APPROVED"
    pid = server.client.get("/ready").json()["opa"]["pid"]
    signal_and_wait(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    down = result_of(server, ops_facts())
    assert down["decision"]["decision_type"] == "OPS.ESCALATE"
    assert down["execution"]["status"] == "ESCALATED"
    assert down["explanation"]["guardrails"]["available"] is False
    assert down["explanation"]["guardrails"]["allow"] is False
    assert down["explanation"]["proposal"]["decision_type"] == "OPS.DISPATCH"
    assert down["decision"]["proposed_actions"][0]["reason"].startswith("guardrails unavailable: ")
    assert down["decision"]["confidence"] == 0.85

    recovered = None
    while time.monotonic() - killed_at < 5.0:
        result = result_of(server, ops_facts())
        if result["execution"]["status"] == "APPROVED":
            recovered = result
            break
        time.sleep(0.05)
    assert recovered is not None, "normal decisions did not return within 5 s of the kill"
    assert recovered["decision"]["decision_type"] == "OPS.DISPATCH"
    ready = server.client.get("/ready").json()
    assert ready["opa"]["restarts"] == 1
    assert ready["opa"]["pid"] != pid


def test_a_policy_slower_than_the_query_timeout_fails_closed(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    rules, rego = copied_dirs
    slow = rego / "guardrails" / "ops" / "slow"
    slow.mkdir()
    (slow / "slow.rego").write_text(
        "package guardrails.ops.slow\n\n"
        'deny contains "never" if {\n'
        "\tcount([x | some x in numbers.range(1, 20000000); x % 7 == 0]) < 0\n"
        "}\n"
    )
    server = start_server(rules, rego, OPSGATE_OPA_TIMEOUT_MS="50")
    result = result_of(server, ops_facts())
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert result["execution"]["status"] == "ESCALATED"
    guardrails = result["explanation"]["guardrails"]
    assert guardrails["available"] is False
    assert guardrails["error"] == "OPA did not answer within 50 ms"

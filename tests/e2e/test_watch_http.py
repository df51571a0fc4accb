"""`opsgate serve` with OPSGATE_WATCH on: edits to rules/ are served without a reload call."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import JSON, Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

DISPATCH_CONFIDENCE = "confidence: 0.90 - 0.05 * process.attempts"
# a shadowed rule is only a warning: the watch must still serve that version
SHADOWED = ("    priority: 40\n", "    priority: 15\n")
BROKEN = ("when: history.failures > 0", "when: history.failures >> 0")
BROKEN_AT = "rules/ops.yaml:113:29: error: rules[3].when: expected a value, found '>'"
SHADOW_WARNING = "rules/ops.yaml:81:11: warning: rules[1].when: rule 'escalate-failures' can never win"


def served(server: Server) -> tuple[str, float]:
    result: dict[str, Any] = result_of(server, ops_facts(attempts=1))
    assert result["decision"]["decision_type"] == "OPS.DISPATCH"
    return result["explanation"]["ruleset"]["version"], result["decision"]["confidence"]


def wait_for(what: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "not seen within the time allowed"
        time.sleep(0.1)


def test_watch_serves_an_edit_keeps_serving_through_a_broken_one_and_picks_up_the_fix(
    start_server: Callable[..., Server], ops_only_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_only_dirs
    original = (rules / "ops.yaml").read_text()
    server = start_server(rules, rego, OPSGATE_WATCH="1", OPSGATE_WATCH_INTERVAL_S="0.2")
    first_version, confidence = served(server)
    assert confidence == pytest.approx(0.85)  # 0.90 - 0.05 * 1

    edited = original.replace(DISPATCH_CONFIDENCE, DISPATCH_CONFIDENCE.replace("0.90", "0.80")).replace(*SHADOWED)
    (rules / "ops.yaml").write_text(edited)
    wait_for(lambda: served(server)[0] != first_version)
    second_version, confidence = served(server)
    assert confidence == pytest.approx(0.75)
    wait_for(lambda: SHADOW_WARNING in server.log_text())

    (rules / "ops.yaml").write_text(edited.replace(*BROKEN))
    wait_for(lambda: BROKEN_AT in server.log_text())
    assert served(server) == (second_version, pytest.approx(0.75))

    fixed = edited.replace(DISPATCH_CONFIDENCE.replace("0.90", "0.80"), DISPATCH_CONFIDENCE.replace("0.90", "0.95"))
    (rules / "ops.yaml").write_text(fixed)
    wait_for(lambda: served(server)[0] not in (first_version, second_version))
    assert served(server)[1] == pytest.approx(0.90)


def test_without_watch_an_edit_is_not_served_until_reloaded(
    start_server: Callable[..., Server], ops_only_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_only_dirs
    server = start_server(rules, rego, OPSGATE_WATCH_INTERVAL_S="0.2")
    version, _ = served(server)
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(DISPATCH_CONFIDENCE, DISPATCH_CONFIDENCE.replace("0.90", "0.80")))
    time.sleep(1.0)
    assert served(server) == (version, pytest.approx(0.85))
    assert server.client.post("/admin/reload", headers=JSON).json()["changed"] is True
    assert served(server)[1] == pytest.approx(0.75)


def test_watch_refuses_an_entrypoint_that_fails_its_contract_and_keeps_serving(
    start_server: Callable[..., Server], ops_only_dirs: tuple[Path, Path]
) -> None:
    rules, rego = ops_only_dirs
    server = start_server(rules, rego, OPSGATE_WATCH="1", OPSGATE_WATCH_INTERVAL_S="0.2")
    first_version, _ = served(server)
    entrypoint = rego / "opsgate" / "opsgate.rego"
    shipped = entrypoint.read_text()
    (rego / "opsgate" / "opsgate_test.rego").unlink()  # the entrypoint's own tests gone: the contract remains
    entrypoint.write_text(shipped.replace('"requires_approval": count(approvals) > 0,', '"requires_approval": false,'))
    wait_for(lambda: "test_success_an_approval_requires_approval_and_is_listed failed" in server.log_text())
    assert "service/adapters/opa/entrypoint_contract_test.rego:" in server.log_text()
    assert served(server)[0] == first_version

    entrypoint.write_text(shipped)
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(DISPATCH_CONFIDENCE, DISPATCH_CONFIDENCE.replace("0.90", "0.80")))
    wait_for(lambda: served(server)[0] != first_version)
    assert served(server)[1] == pytest.approx(0.75)

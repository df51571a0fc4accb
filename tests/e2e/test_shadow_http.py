"""serve --shadow: a candidate with max_attempts 4 decides every live request beside the live version,
off the response path, and GET /admin/shadow counts how it would have decided differently."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import copy_ops_only, opsgate
from tests.e2e.server import Server

DISPATCH, ESCALATE = "OPS.DISPATCH", "OPS.ESCALATE"


def facts(attempts: int, failures: int = 0) -> dict[str, Any]:
    return {
        "org_id": 0,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": attempts},
        "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
        "history": {"failures": failures, "latency": 500},
    }


def candidate(root: Path) -> Path:
    """A shadow directory: rules/ with max_attempts 4, rego/ unchanged (the retry guardrail keeps 3)."""
    rules, _ = copy_ops_only(root)
    ops = rules / "ops.yaml"
    ops.write_text(ops.read_text().replace("max_attempts: 3", "max_attempts: 4"))
    return root


def wait_compared(server: Server, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        summary: dict[str, Any] = server.client.get("/admin/shadow").json()
        if summary["compared"] + summary["errors"] >= count or time.monotonic() > deadline:
            return summary
        time.sleep(0.05)


def test_shadow_counts_the_flips_of_max_attempts_4_without_touching_live_answers(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    live_rules, live_rego = copy_ops_only(tmp_path / "live")
    shadow_dir = candidate(tmp_path / "candidate")
    server = start_server(live_rules, live_rego, OPSGATE_SHADOW=str(shadow_dir))
    live_version = server.client.get("/ready").json()["version"]

    sent = [(3, 0)] * 6 + [(1, 0)] * 4 + [(3, 1)] * 3  # interleaving does not matter; order of samples does
    answers = [server.decide(facts(a, f)) for a, f in sent]
    assert [r.status_code for r in answers] == [200] * 13
    results = [r.json()["result"] for r in answers]
    # live answers are the live version's: the third attempt still escalates
    assert [r["decision"]["decision_type"] for r in results] == [ESCALATE] * 6 + [DISPATCH] * 4 + [ESCALATE] * 3
    assert {r["explanation"]["guardrails"]["revision"] for r in results} == {live_version}

    summary = wait_compared(server, 13)
    assert summary["live_version"] == live_version
    assert summary["candidate_version"] not in ("", live_version)
    assert (summary["compared"], summary["differing"], summary["dropped"], summary["errors"]) == (13, 6, 0, 0)
    # attempts 3, no failure: dispatched now; attempts 3 after a failure: the retry the rules now
    # propose is denied by the retry guardrail (its own limit of 3), so it stays escalated
    assert summary["matrix"] == {ESCALATE: {DISPATCH: 6, ESCALATE: 3}, DISPATCH: {DISPATCH: 4}}
    [flip] = summary["samples"]
    assert (flip["old"], flip["new"], flip["count"]) == (ESCALATE, DISPATCH, 6)
    assert [s["decision_id"] for s in flip["samples"]] == [r["decision_id"] for r in results[1:6]]  # the 5 latest
    assert flip["samples"][0]["old"] == {"decision_type": ESCALATE, "rules": ["escalate-attempts"], "violations": []}
    assert flip["samples"][0]["new"] == {"decision_type": DISPATCH, "rules": ["dispatch"], "violations": []}

    # nothing of the candidate reached the log: every logged decision is the live one
    logged = server.client.get("/decisions", params={"limit": 50}).json()["items"]
    assert len(logged) == 13
    assert {item["ruleset_version"] for item in logged} == {results[0]["explanation"]["ruleset"]["version"]}


def test_admin_shadow_is_404_when_no_shadow_is_configured(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server(*copy_ops_only(tmp_path / "live"))
    response = server.client.get("/admin/shadow")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "shadow_not_configured"
    assert "--shadow DIR" in response.json()["error"]["message"]


def test_a_broken_shadow_candidate_stops_serve_with_file_line_column(tmp_path: Path, opa_bin: str) -> None:
    live_rules, live_rego = copy_ops_only(tmp_path / "live")
    shadow_dir = candidate(tmp_path / "candidate")
    ops = shadow_dir / "rules" / "ops.yaml"
    text = ops.read_text()
    ops.write_text(text.replace("when: history.failures > 0", "when: history.failures >> 0"))
    args = ("--rules-dir", str(live_rules), "--rego-dir", str(live_rego), "--db", str(tmp_path / "d.db"))
    result = opsgate("serve", "--port", "0", *args, "--shadow", str(shadow_dir), opa_bin=opa_bin)
    assert result.returncode == 2
    line = text[: text.index("when: history.failures > 0")].count("\n") + 1
    assert f"rules/ops.yaml:{line}:29: error: rules[3].when: expected a value, found '>'" in result.stderr

    missing = opsgate("serve", "--port", "0", *args, "--shadow", str(tmp_path / "nowhere"), opa_bin=opa_bin)
    assert missing.returncode == 2
    assert f"candidate {tmp_path / 'nowhere'} has no rules/ directory" in missing.stderr

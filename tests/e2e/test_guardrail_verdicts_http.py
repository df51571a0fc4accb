"""The guardrails entrypoint's verdict, end to end: one that is incomplete or inconsistent fails the
decision closed, and a bundle's own ``batch`` rule never decides anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.server import Server
from tests.e2e.test_batch_http import batch
from tests.e2e.test_ops_decisions import ops_facts, result_of

StartServer = Callable[..., Server]

# org 7 may act at L1 at most: the DISPATCH (L2) of ops_facts() waits for approval
HELD = {**ops_facts(), "org_id": 7}
ALL_CLEAR = '{"allow": true, "violations": [], "requires_approval": false, "approvals": []}'


def with_entrypoint(rego: Path, old: str, new: str) -> None:
    """Edit the entrypoint (rego/opsgate/opsgate.rego) and hold org 7 to L1."""
    entrypoint = rego / "opsgate" / "opsgate.rego"
    text = entrypoint.read_text()
    assert old in text, f"{old!r} not in {entrypoint}"
    entrypoint.write_text(text.replace(old, new))
    (rego / "config" / "autonomy" / "data.json").write_text(
        json.dumps({"default_max_level": "L3", "orgs": {"7": "L1"}})
    )


def assert_failed_closed(result: dict[str, Any], reason: str) -> None:
    assert result["decision"]["decision_type"] == "OPS.ESCALATE"
    assert result["execution"]["status"] == "ESCALATED"
    guardrails = result["explanation"]["guardrails"]
    assert (guardrails["available"], guardrails["allow"], guardrails["error"]) == (False, False, reason)


def test_an_entrypoint_answering_only_allow_true_fails_closed_naming_the_missing_field(
    copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    with_entrypoint(rego, "decision := {\n", 'decision := {"allow": true}\n\n_unused := {\n')
    server = start_server(rules, rego)
    reason = "malformed guardrail verdict: Object missing required field `violations`"
    assert_failed_closed(result_of(server, HELD), reason)
    assert_failed_closed(result_of(server, ops_facts()), reason)
    for entry in batch(server, [HELD, ops_facts()]).json()["results"]:
        assert_failed_closed(entry["result"], reason)


def test_approvals_listed_without_requires_approval_fail_closed(
    copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    with_entrypoint(rego, '"requires_approval": count(approvals) > 0,', '"requires_approval": false,')
    server = start_server(rules, rego)
    reason = "inconsistent guardrail verdict: `requires_approval` is false with 1 item(s) in `approvals`"
    assert_failed_closed(result_of(server, HELD), reason)
    assert_failed_closed(batch(server, [HELD]).json()["results"][0]["result"], reason)
    # a verdict with nothing to approve is still well-formed: the other orgs are served as before
    assert result_of(server, ops_facts())["execution"]["status"] == "APPROVED"


def test_a_bundle_batch_rule_that_approves_everything_changes_no_verdict(
    copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    with_entrypoint(
        rego, "_violations contains", f"batch := [{ALL_CLEAR} | some _ in input.items]\n\n_violations contains"
    )
    server = start_server(rules, rego)
    alone = result_of(server, HELD)
    assert alone["execution"]["status"] == "PENDING_APPROVAL"
    response = batch(server, [HELD] * 20 + [ops_facts()])
    assert response.status_code == 200, response.text
    statuses = [entry["result"]["execution"]["status"] for entry in response.json()["results"]]
    assert statuses == ["PENDING_APPROVAL"] * 20 + ["APPROVED"]
    approvals = [entry["result"]["explanation"]["guardrails"]["approvals"] for entry in response.json()["results"]]
    assert approvals[:20] == [alone["explanation"]["guardrails"]["approvals"]] * 20

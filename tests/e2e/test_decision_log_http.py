"""The reviewers' API over HTTP against a real `opsgate serve`: query, record, explain, outcomes,
chain heads, ruleset versions and diffs, replay across a restart, and durability under SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import EXAMPLE_FACTS, verified
from tests.e2e.server import JSON, Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

RETRY_CONFIDENCE = "confidence: 0.85 - 0.05 * process.attempts - 0.10 * history.failures"


def test_decisions_are_listed_newest_first_and_filtered(server: Server) -> None:
    since = server.client.get("/decisions", params={"limit": 1}).json()["items"]
    marker = since[0]["created_at"] if since else "2000-01-01T00:00:00Z"
    retry = result_of(server, {**ops_facts(failures=1), "org_id": 4242})
    escalate = result_of(server, {**ops_facts(attempts=3), "org_id": 4242})
    denied = result_of(server, {**ops_facts(attempts=2, failures=2, status="offline"), "org_id": 4243})

    def ids(**params: Any) -> list[str]:
        response = server.client.get("/decisions", params={"since": marker, **params})
        assert response.status_code == 200, response.text
        return [item["decision_id"] for item in response.json()["items"] if item["created_at"] > marker]

    assert ids(org_id="4242") == [escalate["decision_id"], retry["decision_id"]]
    assert ids(org_id="4242", decision_type="OPS.RETRY") == [retry["decision_id"]]
    assert ids(org_id="4242", rule="escalate-attempts") == [escalate["decision_id"]]
    assert ids(org_id="4242", status="ESCALATED") == [escalate["decision_id"]]
    assert ids(org_id="4242", caller="127.0.0.1", ruleset="ops") == [escalate["decision_id"], retry["decision_id"]]
    assert ids(org_id="4242", caller="10.9.9.9") == []
    assert denied["explanation"]["guardrails"]["violations"][0]["id"] == "OPS-MIN-CONFIDENCE"
    assert ids(denied_by="OPS-MIN-CONFIDENCE") == [denied["decision_id"]]
    assert ids(denied_by="ops.min_confidence") == [denied["decision_id"]]
    page = server.client.get("/decisions", params={"org_id": "4242", "limit": 1}).json()
    assert [i["decision_id"] for i in page["items"]] == [escalate["decision_id"]]
    older = server.client.get("/decisions", params={"org_id": "4242", "limit": 1, "cursor": page["next_cursor"]})
    assert [i["decision_id"] for i in older.json()["items"]] == [retry["decision_id"]]


def test_bad_query_parameters_are_400_naming_the_parameter(server: Server) -> None:
    for params, path, reason in (
        ({"since": "yesterday"}, "since", "not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)"),
        ({"until": "0001-01-01T00:00:00+01:00"}, "until", "not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)"),
        ({"limit": "0"}, "limit", "Expected `int` >= 1"),
        ({"limit": "many"}, "limit", "Expected `int`, got `str`"),
        ({"cursor": "x1"}, "cursor", "Expected `str` matching regex '^[0-9]{1,18}$'"),
        ({"colour": "red"}, "colour", "unknown field"),
    ):
        response = server.client.get("/decisions", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["details"] == [{"path": path, "reason": reason}]


def test_a_decision_record_holds_its_full_provenance_and_outcomes(server: Server) -> None:
    result = result_of(server, ops_facts(failures=1))
    decision_id = result["decision_id"]
    shown = server.client.get(f"/decisions/{decision_id}").json()
    record = shown["record"]
    assert record["kind"] == "decision" and record["decision_id"] == decision_id
    assert record["caller"] == "127.0.0.1"
    assert record["facts"] == {**ops_facts(failures=1), "candidates": []}  # as decoded, defaults filled in
    assert record["ruleset"] == {"name": "ops", "version": result["explanation"]["ruleset"]["version"],
                                 "file": "rules/ops.yaml"}  # fmt: skip
    assert [(r["id"], r["file"], r["line"], r["won"]) for r in record["fired_rules"]] == [
        ("retry-after-failure", "rules/ops.yaml", 109, True),
        ("dispatch", "rules/ops.yaml", 123, False),
    ]
    assert record["proposal"]["decision_type"] == "OPS.RETRY"
    assert record["guardrails"]["violations"] == [] and record["guardrails"]["allow"] is True
    assert record["decision"]["confidence"] == 0.7 and record["execution"]["status"] == "APPROVED"
    assert set(record["latency_ms"]) == {"decode", "rules", "guardrails", "total"}
    assert shown["log_id"] == result["decision_log_id"] and len(shown["hash"]) == 64
    assert shown["outcomes"] == []

    posted = server.client.post(f"/decisions/{decision_id}/outcome", json={"status": "FAILED", "detail": "timeout"})
    assert posted.status_code == 201
    assert posted.json()["record"]["decision_id"] == decision_id
    outcomes = server.client.get(f"/decisions/{decision_id}").json()["outcomes"]
    assert [o["record"]["outcome"] for o in outcomes] == [{"status": "FAILED", "detail": "timeout"}]
    assert outcomes[0]["record"]["kind"] == "outcome" and outcomes[0]["hash"] == posted.json()["hash"]


def test_the_log_head_is_the_hash_of_the_latest_record(server: Server) -> None:
    result = result_of(server, ops_facts())
    shown = server.client.get(f"/decisions/{result['decision_id']}").json()
    chains = server.client.get("/log/head").json()["chains"]
    assert len(chains) == 1
    assert (chains[0]["seq"], chains[0]["hash"]) == (shown["seq"], shown["hash"])


def test_outcomes_for_unknown_decisions_or_with_bad_fields_are_refused(server: Server) -> None:
    decision_id = result_of(server, ops_facts())["decision_id"]
    unknown = server.client.post("/decisions/no-such-id/outcome", json={"status": "SUCCEEDED"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    bad = server.client.post(f"/decisions/{decision_id}/outcome", json={"status": "DONE"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"] == [{"path": "status", "reason": "Invalid enum value 'DONE'"}]
    extra = server.client.post(f"/decisions/{decision_id}/outcome", json={"status": "FAILED", "why": "x"})
    assert extra.status_code == 422 and extra.json()["error"]["details"][0]["path"] == "why"
    broken = server.client.post(f"/decisions/{decision_id}/outcome", content=b'{"status": ', headers=JSON)
    assert broken.status_code == 400
    assert server.client.get(f"/decisions/{decision_id}").json()["outcomes"] == []
    assert server.client.get("/decisions/no-such-id").status_code == 404


def test_explain_gives_one_sentence_per_fired_rule_with_the_actual_values(server: Server) -> None:
    result = result_of(server, ops_facts(attempts=3, failures=1))
    version = result["explanation"]["ruleset"]["version"]
    sentences = server.client.get(f"/decisions/{result['decision_id']}/explain").json()["sentences"]
    assert sentences[:3] == [
        f"Too many attempts: process.attempts 3 ≥ params.max_attempts 3 "
        f"(rule escalate-attempts, rules/ops.yaml:63, version {version[:12]}…).",
        f"Retry after a failure: history.failures 1 > 0 (rule retry-after-failure, rules/ops.yaml:109, "
        f"version {version[:12]}…). It matched, but a rule of higher priority decided.",
        f"Dispatch to the resource: always (rule dispatch, rules/ops.yaml:123, version {version[:12]}…). "
        "It matched, but a rule of higher priority decided.",
    ]
    assert sentences[3].startswith("Decision OPS.ESCALATE with confidence 0.95: ESCALATED.")


def test_a_denied_action_is_explained_with_its_policy_and_location(server: Server) -> None:
    result = result_of(server, ops_facts(attempts=2, failures=2, status="offline"))
    sentences = server.client.get(f"/decisions/{result['decision_id']}/explain").json()["sentences"]
    denial = next(s for s in sentences if s.startswith("Guardrail"))
    assert denial.startswith(
        "Guardrail OPS-MIN-CONFIDENCE (Confidence below minimum) denied: confidence 0.5 is below the minimum 0.6 "
        "(rego/guardrails/ops/min_confidence/min_confidence.rego:"
    )


def test_a_changed_rule_makes_a_second_version_with_its_diff_and_replay_shows_the_change(
    start_server: Callable[..., Server], ops_only_dirs: tuple[Path, Path], opa_bin: str
) -> None:
    rules, rego = ops_only_dirs
    first = start_server(rules, rego)
    old = result_of(first, ops_facts(failures=1))
    assert old["decision"]["confidence"] == 0.7  # 0.85 - 0.05 * 1 - 0.10 * 1
    unchanged = first.client.post(f"/decisions/{old['decision_id']}/replay", headers=JSON).json()
    assert (unchanged["changed"], unchanged["differences"]) == (False, [])
    first.stop()

    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    second = start_server(rules, rego)
    listing = second.client.get("/rulesets").json()
    assert len(listing["versions"]) == 2
    current = [v for v in listing["versions"] if v["current"]]
    assert [v["version"] for v in current] == [listing["current"]]
    old_version = old["explanation"]["ruleset"]["version"]  # one ruleset: it is also the whole version
    assert {v["version"] for v in listing["versions"]} == {old_version, listing["current"]}

    diff = second.client.get(f"/rulesets/{old_version[:8]}/diff/{listing['current'][:8]}")
    assert diff.status_code == 200 and diff.headers["content-type"].startswith("text/plain")
    assert "--- a/rules/ops.yaml\n+++ b/rules/ops.yaml\n" in diff.text
    assert f"\n-      {RETRY_CONFIDENCE}\n" in diff.text
    assert f"\n+      {RETRY_CONFIDENCE.replace('0.85', '0.80')}\n" in diff.text
    assert diff.text.count("\n-  ") == 1 and diff.text.count("\n+  ") == 1

    files = second.client.get(f"/rulesets/{old_version}").json()["files"]
    assert RETRY_CONFIDENCE in next(f["content"] for f in files if f["path"] == "rules/ops.yaml")

    replay = second.client.post(f"/decisions/{old['decision_id']}/replay", headers=JSON).json()
    assert replay["changed"] is True
    assert replay["differences"] == [{"field": "decision.confidence", "before": 0.7, "after": 0.65}]
    assert (replay["before"]["version"], replay["after"]["version"]) == (old_version, listing["current"])
    # the explanation still reads the rules as they were when the decision was made
    explained = second.client.get(f"/decisions/{old['decision_id']}/explain").json()["sentences"][0]
    assert f"version {old_version[:12]}…" in explained
    assert verified(str(second.db), opa_bin) == "1 records verified, chain intact\n2 ruleset version(s) verified\n"


def test_unknown_or_ambiguous_versions_are_clear_errors(server: Server) -> None:
    assert server.client.get("/rulesets/abc").status_code == 400  # too short to be a version
    missing = server.client.get("/rulesets/ffffffffffff")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no ruleset version 'ffffffffffff'"


def test_every_answered_decision_survives_a_sigkill_and_the_chain_verifies(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], opa_bin: str
) -> None:
    rules, rego = copied_dirs
    running = start_server(rules, rego)
    answered: list[str] = []

    async def one(client: httpx.AsyncClient, n: int) -> None:
        facts = {**EXAMPLE_FACTS, "org_id": n}
        try:
            response = await client.post("/decide", json=facts)
        except httpx.TransportError:
            return
        if response.status_code == 200:
            answered.append(response.json()["result"]["decision_id"])
            if len(answered) == 150:
                os.kill(running.proc.pid, signal.SIGKILL)

    async def run() -> None:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=running.url, limits=limits, timeout=10) as client:
            await asyncio.gather(*(one(client, n) for n in range(500)))

    asyncio.run(run())
    assert running.proc.wait(10) == -signal.SIGKILL
    assert 150 <= len(answered) < 500

    restarted = start_server(rules, rego)
    for decision_id in answered:
        assert restarted.client.get(f"/decisions/{decision_id}").status_code == 200, decision_id
    logged = int(verified(str(restarted.db), opa_bin).split()[0])
    assert logged >= len(answered)


def test_replicas_on_postgresql_each_keep_their_own_chain(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], pg_url: str, opa_bin: str
) -> None:
    rules, rego = copied_dirs
    one = start_server(rules, rego, db=pg_url, OPSGATE_WRITER_ID="replica-1")
    two = start_server(rules, rego, db=pg_url, OPSGATE_WRITER_ID="replica-2")
    assert one.client.get("/ready").json()["decision_log"] == {
        # no user info, no query string (either may hold a password)
        "store": "postgresql://" + pg_url.split("@")[1].split("?")[0],
        "writer": "replica-1",
        "ok": True,
        "cause": None,
        "error": None,
    }
    decided = [result_of(server, ops_facts(failures=n % 2)) for n in range(6) for server in (one, two)]
    heads = one.client.get("/log/head").json()["chains"]
    assert [(h["writer"], h["seq"]) for h in heads] == [("replica-1", 6), ("replica-2", 6)]
    # either replica serves every decision, whichever replica logged it
    for result in decided:
        assert two.client.get(f"/decisions/{result['decision_id']}").status_code == 200
    assert verified(pg_url, opa_bin).splitlines()[0] == "12 records verified, chain intact (2 chains)"

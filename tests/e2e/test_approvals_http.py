"""Human approval over HTTP against a real `opsgate serve` (open development mode, callers named by
X-Opsgate-Caller): the pending queue, execute, reject, double answers, separation of duties, expiry
and escalation, a restart, and the dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import verified
from tests.e2e.server import JSON, Server

CALLER = "X-Opsgate-Caller"


def deploy_facts(component: str, traffic_pct: int = 50) -> dict[str, Any]:
    """A new model rolled out above 25% of the traffic: deploy's rules send it to PENDING_APPROVAL."""
    return {"org_id": 3, "component": component, "version": "v9", "scenario": "new_model", "traffic_pct": traffic_pct}


def ask(server: Server, component: str, by: str = "alice", traffic_pct: int = 50) -> dict[str, Any]:
    response = server.client.post("/decide/deploy", json=deploy_facts(component, traffic_pct), headers={CALLER: by})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def answer(server: Server, decision_id: str, verb: str, by: str, body: Any = None) -> httpx.Response:
    payload = {"reason": f"{by} checked the canary"} if body is None else body
    return server.client.post(f"/operations/decisions/{decision_id}/{verb}", json=payload, headers={CALLER: by})


def pending_ids(server: Server) -> list[str]:
    response = server.client.get("/operations/decisions/pending")
    assert response.status_code == 200, response.text
    return [item["decision_id"] for item in response.json()["items"]]


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def with_expiry(dirs: tuple[Path, Path], seconds: int) -> tuple[Path, Path]:
    rules, rego = dirs
    deploy = rules / "deploy.yaml"
    text = deploy.read_text()
    assert "  approval_expiry_s: 3600\n" in text
    deploy.write_text(text.replace("  approval_expiry_s: 3600\n", f"  approval_expiry_s: {seconds}\n"))
    return rules, rego


def test_a_decision_pending_approval_is_queued_oldest_first_with_its_explanation(server: Server) -> None:
    first = ask(server, "queue-first")
    second = ask(server, "queue-second", by="dave")
    assert first["execution"]["status"] == "PENDING_APPROVAL"
    assert ask(server, "queue-shadow", traffic_pct=25)["execution"]["status"] == "APPROVED"
    response = server.client.get("/operations/decisions/pending")
    items = {item["decision_id"]: item for item in response.json()["items"]}
    ids = [i for i in pending_ids(server) if i in (first["decision_id"], second["decision_id"])]
    assert ids == [first["decision_id"], second["decision_id"]]
    item = items[first["decision_id"]]
    assert (item["ruleset"], item["requested_by"]) == ("deploy", "alice")
    assert items[second["decision_id"]]["requested_by"] == "dave"
    assert item["decision"]["decision_type"] == "DEPLOY.NEW_MODEL"
    assert item["execution"]["status"] == "PENDING_APPROVAL"
    waits = datetime.fromisoformat(item["expires_at"]) - datetime.fromisoformat(item["created_at"])
    assert waits.total_seconds() == 3600  # deploy's approval_expiry_s
    assert item["age_s"] >= 0
    explanation = item["explanation"]
    assert [r["id"] for r in explanation["fired_rules"]] == ["new-model"]
    approvals = explanation["guardrails"]["approvals"]
    assert [(a["id"], a["message"]) for a in approvals] == [
        ("DEPLOY-HUMAN-APPROVAL", "new model at 50% of the traffic needs approval above 25%")
    ]
    assert explanation["sentences"]


def test_an_approver_executes_a_pending_decision_and_the_approval_is_chained(server: Server, opa_bin: str) -> None:
    decided = ask(server, "execute-me")
    response = answer(server, decided["decision_id"], "execute", "bob")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["decided_by"]) == ("EXECUTED", "bob")
    record = body["record"]
    assert (record["kind"], record["caller"], record["decision_id"]) == ("approval", "bob", decided["decision_id"])
    assert record["approval"]["status"] == "EXECUTED"
    assert record["approval"]["reason"] == "bob checked the canary"
    assert record["approval"]["requested_by"] == "alice"
    assert decided["decision_id"] not in pending_ids(server)
    shown = server.client.get(f"/decisions/{decided['decision_id']}").json()
    assert [(a["record"]["kind"], a["record"]["approval"]["status"]) for a in shown["approvals"]] == [
        ("approval", "EXECUTED")
    ]
    assert shown["outcomes"] == []
    assert shown["approvals"][0]["hash"] == body["hash"]
    page = server.client.get(f"/ui/decisions/{decided['decision_id']}").text
    approvals_table = page.split('<table id="approvals">', 1)[1].split("</table>", 1)[0]
    assert '<span class="status EXECUTED">EXECUTED</span>' in approvals_table
    assert "<td>bob checked the canary</td><td>bob</td>" in approvals_table
    assert "chain intact" in verified(server.db, opa_bin)


def test_an_approver_rejects_a_pending_decision(server: Server) -> None:
    decided = ask(server, "reject-me")
    response = answer(server, decided["decision_id"], "reject", "carol", {"reason": "error rate too high"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "REJECTED"
    assert response.json()["record"]["approval"]["reason"] == "error rate too high"
    assert decided["decision_id"] not in pending_ids(server)


def test_a_second_answer_to_a_decided_item_is_409_naming_its_status(server: Server) -> None:
    decided = ask(server, "twice")
    assert answer(server, decided["decision_id"], "execute", "bob").status_code == 200
    again = answer(server, decided["decision_id"], "execute", "carol")
    assert error_of(again) == (409, "already_decided")
    assert "already decided: EXECUTED by bob" in again.json()["error"]["message"]
    assert error_of(answer(server, decided["decision_id"], "reject", "carol")) == (409, "already_decided")
    shown = server.client.get(f"/decisions/{decided['decision_id']}").json()
    assert len(shown["approvals"]) == 1


def test_the_caller_that_asked_cannot_approve_or_reject_its_own_decision(server: Server) -> None:
    decided = ask(server, "mine", by="alice")
    for verb in ("execute", "reject"):
        refused = answer(server, decided["decision_id"], verb, "alice")
        assert error_of(refused) == (403, "separation_of_duties")
        assert refused.json()["error"]["message"] == (
            f"'alice' asked for decision '{decided['decision_id']}' and cannot also approve or reject it"
        )
    assert decided["decision_id"] in pending_ids(server)
    page = server.client.get(f"/ui/decisions/{decided['decision_id']}").text
    assert "Waiting for approval until 20" in page.split('<table id="approvals">', 1)[1]


def test_unknown_and_never_pending_decisions_are_refused(server: Server) -> None:
    assert error_of(answer(server, "no-such-decision", "execute", "bob")) == (404, "not_found")
    approved = ask(server, "no-approval-needed", traffic_pct=5)
    refused = answer(server, approved["decision_id"], "execute", "bob")
    assert error_of(refused) == (409, "not_pending")
    assert "is APPROVED: it does not wait for approval" in refused.json()["error"]["message"]


def test_an_answer_without_a_reason_is_422_naming_the_field(server: Server) -> None:
    decided = ask(server, "bad-bodies")
    cases = [
        ({}, "reason", "required field is missing"),
        ({"reason": ""}, "reason", "Expected `str` of length >= 1"),
        ({"reason": "   "}, "reason", "blank: say why"),
        ({"reason": 7}, "reason", "Expected `str`, got `int`"),
        ({"reason": "ok", "by": "mallory"}, "by", "unknown field"),
    ]
    for body, path, reason in cases:
        response = answer(server, decided["decision_id"], "execute", "bob", body)
        assert error_of(response) == (422, "invalid_request"), body
        assert response.json()["error"]["details"] == [{"path": path, "reason": reason}], body
    malformed = server.client.post(
        f"/operations/decisions/{decided['decision_id']}/reject", content=b"{", headers={CALLER: "bob", **JSON}
    )
    assert error_of(malformed) == (400, "malformed_request")
    assert decided["decision_id"] in pending_ids(server)


def test_a_bad_page_size_of_the_pending_list_is_400_naming_it(server: Server) -> None:
    response = server.client.get("/operations/decisions/pending", params={"limit": "0"})
    assert error_of(response) == (400, "malformed_request")
    assert response.json()["error"]["details"][0]["path"] == "limit"


def test_the_dashboard_counts_the_window_and_the_pending_queue(server: Server) -> None:
    ask(server, "dashboard-pending")
    ask(server, "dashboard-approved", traffic_pct=5)
    body = server.client.get("/dashboard").json()
    assert body["decisions"]["by_decision_type"]["DEPLOY.NEW_MODEL"] >= 2
    statuses = body["decisions"]["by_execution_status"]
    assert statuses["PENDING_APPROVAL"] >= 1 and statuses["APPROVED"] >= 1
    assert body["decisions"]["total"] == sum(body["decisions"]["by_decision_type"].values())
    assert body["pending_approvals"]["count"] == len(pending_ids(server))
    assert body["pending_approvals"]["oldest_age_s"] >= 0
    assert body["guardrails"]["breaker"] == "closed"
    assert 0 < body["latency_ms"]["p50"] <= body["latency_ms"]["p99"]
    since = datetime.fromisoformat(body["window"]["since"])
    until = datetime.fromisoformat(body["window"]["until"])
    assert (until - since).total_seconds() == 3600
    future = server.client.get("/dashboard", params={"since": "2099-01-01T00:00:00Z", "until": "2099-01-02T00:00:00Z"})
    decisions = future.json()["decisions"]
    assert {k: v for k, v in decisions.items() if k != "timeline"} == {
        "total": 0, "by_decision_type": {}, "by_execution_status": {}, "by_status": {}
    }  # fmt: skip
    # a day's window: a bucket per hour, every one empty
    assert decisions["timeline"]["bucket"] == "hour"
    assert [item["start"] for item in decisions["timeline"]["series"]] == [f"2099-01-01T{h:02d}" for h in range(24)]
    assert {item["total"] for item in decisions["timeline"]["series"]} == {0}
    assert future.json()["escalation"] == {"escalated": 0, "rate": 0.0}
    assert future.json()["latency_ms"] == {"p50": None, "p90": None, "p99": None}


def test_bad_dashboard_windows_are_400_naming_the_parameter(server: Server) -> None:
    cases = [
        ({"window": "fortnight"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "40d"}, "window"),
        ({"window": "1h", "since": "2026-11-21T00:00:00Z"}, "window"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-21T10:00:00Z", "until": "2026-11-21T09:00:00Z"}, "since"),
        ({"until": "soon"}, "until"),
        ({"until": "0001-01-01T00:30:00Z"}, "until"),
        ({"colour": "red"}, "colour"),
    ]
    for params, path in cases:
        response = server.client.get("/dashboard", params=params)
        assert error_of(response) == (400, "malformed_request"), params
        assert response.json()["error"]["details"][0]["path"] == path, params


def test_a_restart_keeps_the_pending_items(start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]) -> None:
    rules, rego = copied_dirs
    first = start_server(rules, rego)
    waiting = [ask(first, f"restart-{n}")["decision_id"] for n in range(3)]
    assert answer(first, waiting[1], "reject", "bob").status_code == 200
    first.stop()
    second = start_server(rules, rego, db=first.db)
    assert pending_ids(second) == [waiting[0], waiting[2]]
    assert answer(second, waiting[2], "execute", "bob").status_code == 200
    assert error_of(answer(second, waiting[1], "execute", "bob")) == (409, "already_decided")
    assert pending_ids(second) == [waiting[0]]


def test_an_item_nobody_answers_expires_and_is_escalated(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], opa_bin: str
) -> None:
    rules, rego = with_expiry(copied_dirs, 1)
    running = start_server(rules, rego, OPSGATE_APPROVAL_SWEEP_S="0.2")
    decided = ask(running, "expiring")
    url = f"/decisions/{decided['decision_id']}"
    wait_for(lambda: bool(running.client.get(url).json()["approvals"]))
    (expiry,) = running.client.get(url).json()["approvals"]
    record = expiry["record"]
    assert (record["kind"], record["caller"]) == ("expiry", "opsgate")
    assert record["approval"]["status"] == "EXPIRED"
    assert record["approval"]["escalated"] is True
    assert record["approval"]["escalation"] == {"decision_type": "DEPLOY.ESCALATE", "autonomy": "L0"}
    assert record["approval"]["requested_by"] == "alice"
    assert decided["decision_id"] not in pending_ids(running)
    late = answer(running, decided["decision_id"], "execute", "bob")
    assert error_of(late) == (409, "already_decided")
    assert "already decided: EXPIRED by opsgate" in late.json()["error"]["message"]
    dashboard = running.client.get("/dashboard").json()
    assert dashboard["pending_approvals"]["resolved_in_window"] == {"EXPIRED": 1}
    assert "EXPIRED and escalated to DEPLOY.ESCALATE" in running.log_text()
    page = running.client.get(f"/ui{url}").text
    assert "EXPIRED</span> (escalated to DEPLOY.ESCALATE)" in page
    assert "chain intact" in verified(running.db, opa_bin)


def test_an_answer_after_the_expiry_is_409_expired_even_before_the_sweeper_runs(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = with_expiry(copied_dirs, 1)
    running = start_server(rules, rego, OPSGATE_APPROVAL_SWEEP_S="3600")  # swept at start, then not for an hour
    decided = ask(running, "expired-unswept")
    wait_for(lambda: decided["decision_id"] not in pending_ids(running))
    for verb in ("execute", "reject"):
        late = answer(running, decided["decision_id"], verb, "bob")
        assert error_of(late) == (409, "expired")
        assert "it can no longer be approved or rejected" in late.json()["error"]["message"]
    assert running.client.get(f"/decisions/{decided['decision_id']}").json()["approvals"] == []


def test_the_pending_approvals_gauge_counts_the_queue_at_scrape_time(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    running = start_server(*copied_dirs)
    waiting = [ask(running, f"gauge-{n}")["decision_id"] for n in range(3)]
    assert answer(running, waiting[0], "execute", "bob").status_code == 200
    scraped = running.client.get("/metrics").text
    assert "\nopsgate_pending_approvals 2.0\n" in scraped

"""The pages of the reviewers' work in a real Chromium against a real ``opsgate serve`` (open development
mode, the deciding service named by X-Opsgate-Caller, the browser's caller its address): /ui/pending
answered from its forms, a decision's current status and history after approval and outcome, the
denied actions beside the escalation, and /ui/dashboard's SVG charts.  Screenshots go to
tests/artifacts/screenshots/."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server
from tests.e2e.test_approvals_http import CALLER, deploy_facts, pending_ids
from tests.e2e.test_reviewer_pages import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, facts

BOT = "deploy-bot"  # the service that asks for the decisions; the browser (127.0.0.1) answers them
SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


def ask(server: Server, component: str, traffic_pct: int = 50) -> str:
    response = server.client.post("/decide/deploy", json=deploy_facts(component, traffic_pct), headers={CALLER: BOT})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    assert result["execution"]["status"] == ("PENDING_APPROVAL" if traffic_pct > 25 else "APPROVED")
    decision_id: str = result["decision_id"]
    return decision_id


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / name
    target.unlink(missing_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def texts(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def status_cells(page: Page, server: Server, query: str = "") -> dict[str, str]:
    """The decision list filtered by ``query``: each row's status cell, by decision id."""
    page.goto(f"{server.url}/ui/decisions?{query}")
    links = page.locator("#decisions tbody tr td:first-child a").evaluate_all("as => as.map(a => a.pathname)")
    cells = texts(page, "#decisions tbody tr td:nth-child(3)")
    return {link.rsplit("/", 1)[1]: cell for link, cell in zip(links, cells, strict=True)}


def answer_in_page(page: Page, decision_id: str, verb: str, reason: str) -> None:
    form = page.locator(f"#pending-{decision_id} form.{verb}")
    form.locator("textarea[name=reason]").fill(reason)
    form.locator("button").click()


def test_the_queue_lists_the_pending_decisions_oldest_first_with_age_expiry_and_forms(
    page: Page, server: Server
) -> None:
    queued = [ask(server, f"queue-{n}") for n in range(3)]
    ask(server, "queue-small", traffic_pct=5)  # approved at once: never queued
    page.goto(f"{server.url}/ui/pending")
    assert page.title() == "Pending approval · opsgate"
    shown = page.locator("section.pending").evaluate_all("ss => ss.map(s => s.id.slice(8))")
    assert shown == queued
    expiries = {item["decision_id"]: item["expires_at"] for item in server.client.get("/operations/decisions/pending")
                .json()["items"]}  # fmt: skip
    for decision_id in queued:
        section = page.locator(f"#pending-{decision_id}")
        assert section.locator(".requested-by").inner_text() == BOT
        assert re.fullmatch(r"\d+ s|1 min \d+ s", section.locator(".age").inner_text()), "decided moments ago"
        expiry = section.locator(".expiry").inner_text()
        # deploy's approval_expiry_s is 3600
        assert re.fullmatch(re.escape(expiries[decision_id][:19].replace("T", " ")) + r" \(in 5\d min \d+ s\)", expiry)
        assert section.locator("form.execute textarea[required]").count() == 1
        assert section.locator("form.reject textarea[required]").count() == 1
        assert section.locator("form input[name=csrf_token]").count() == 2
    screenshot(page, "pending.png")


def test_approved_from_the_queue_then_its_outcome_the_decision_shows_its_current_status_and_history(
    page: Page, server: Server
) -> None:
    approved, waiting = ask(server, "approve-me"), ask(server, "still-waiting")
    page.goto(f"{server.url}/ui/pending")
    answer_in_page(page, approved, "execute", "canary error rate flat for 30 min")
    page.wait_for_url(f"**/ui/pending?answered={approved}&status=EXECUTED")
    assert page.locator("#answered").inner_text() == f"Decision {approved} is now EXECUTED."
    assert page.locator(f"#pending-{approved}").count() == 0
    assert page.locator(f"#pending-{waiting}").count() == 1

    assert status_cells(page, server)[approved] == "EXECUTED (decided PENDING_APPROVAL)"
    assert status_cells(page, server)[waiting] == "PENDING_APPROVAL"
    assert list(status_cells(page, server, "status=EXECUTED")) == [approved]
    pending_now = status_cells(page, server, "status=PENDING_APPROVAL")
    assert waiting in pending_now and approved not in pending_now

    reported = server.client.post(f"/decisions/{approved}/outcome", json={"status": "SUCCEEDED",
                                  "detail": "rolled out to 50%"}, headers={CALLER: BOT})  # fmt: skip
    assert reported.status_code == 201, reported.text
    assert status_cells(page, server)[approved] == "SUCCEEDED (decided PENDING_APPROVAL)"
    assert list(status_cells(page, server, "status=SUCCEEDED")) == [approved]
    assert status_cells(page, server, "status=EXECUTED") == {}

    page.goto(f"{server.url}/ui/decisions/{approved}")
    assert page.locator("#current-status").inner_text() == "SUCCEEDED"
    assert page.locator("h1").inner_text() == "DEPLOY.NEW_MODEL SUCCEEDED (decided PENDING_APPROVAL)"
    steps = page.locator("#history li")
    assert steps.evaluate_all("ls => ls.map(l => l.dataset.event)") == ["decided", "approved", "outcome"]
    assert texts(page, "#history li .status") == ["PENDING_APPROVAL", "EXECUTED", "SUCCEEDED"]
    assert ": EXECUTED by 127.0.0.1: canary error rate flat for 30 min" in steps.nth(1).inner_text()
    assert ": SUCCEEDED by deploy-bot: rolled out to 50%" in steps.nth(2).inner_text()
    assert page.locator("#actions-held").count() == 0  # approved: its actions went out
    assert page.locator("h2", has_text="actions").inner_text() == "Proposed and executed actions"
    screenshot(page, "decision-executed.png")


def test_a_rejection_needs_a_reason_and_then_shows_as_the_current_status(page: Page, server: Server) -> None:
    rejected = ask(server, "reject-me")
    page.goto(f"{server.url}/ui/decisions/{rejected}")
    assert page.locator("#actions-held").inner_text() == "Waiting for approval: not executed yet."
    assert json.loads(page.locator("#actions").inner_text())[0]["component"] == "reject-me"
    page.goto(f"{server.url}/ui/pending")
    page.locator(f"#pending-{rejected} form.reject button").click()  # no reason: the browser does not post
    assert page.url == f"{server.url}/ui/pending"
    blank = page.request.post(f"{server.url}/ui/pending/{rejected}/reject", form={"reason": "  "})
    assert blank.status == 422
    assert "<code>reason</code>: blank: say why" in blank.text()
    assert rejected in pending_ids(server)

    answer_in_page(page, rejected, "reject", "no canary data yet")
    page.wait_for_url(f"**/ui/pending?answered={rejected}&status=REJECTED")
    assert status_cells(page, server, "status=REJECTED") == {rejected: "REJECTED (decided PENDING_APPROVAL)"}
    page.goto(f"{server.url}/ui/decisions/{rejected}")
    assert page.locator("#current-status").inner_text() == "REJECTED"
    assert texts(page, "#history li .status") == ["PENDING_APPROVAL", "REJECTED"]
    assert page.locator("#actions-held").inner_text() == "Rejected: never executed."
    assert page.locator("h2", has_text="actions").inner_text() == "Proposed actions"


def test_whoever_asked_for_a_decision_cannot_answer_it_from_the_queue(browser: Browser, server: Server) -> None:
    own = ask(server, "my-own")
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers={CALLER: BOT})
    try:
        mine = context.new_page()
        mine.goto(f"{server.url}/ui/pending")
        with mine.expect_response(f"{server.url}/ui/pending/{own}/execute") as posted:
            answer_in_page(mine, own, "execute", "looks fine to me")
        assert posted.value.status == 403
        assert mine.locator("h1").inner_text() == (
            f"403: 'deploy-bot' asked for decision '{own}' and cannot also approve or reject it"
        )
    finally:
        context.close()
    assert own in pending_ids(server)


def test_a_denied_decision_shows_the_denied_actions_beside_the_escalation(page: Page, server: Server) -> None:
    denied = server.decide(facts(org_id=13, attempts=2, failures=2, status="offline")).json()["result"]
    page.goto(f"{server.url}/ui/decisions/{denied['decision_id']}")
    boxes = page.locator("#denied-actions h3")
    assert texts(page, "#denied-actions h3") == [
        "Denied: OPS.REASSIGN as the rules proposed", "Instead: OPS.ESCALATE (ESCALATED)"
    ]  # fmt: skip
    assert boxes.count() == 2
    assert json.loads(page.locator("#denied").inner_text()) == [
        {"type": "REASSIGN", "autonomy": "L2", "resource_id": "worker-001", "target_id": None}
    ]
    assert json.loads(page.locator("#instead").inner_text()) == [
        {
            "type": "OPEN_INCIDENT",
            "autonomy": "L0",
            "resource_id": "worker-001",
            "reason": "denied by ops.min_confidence",
        }
    ]


def svg_texts(page: Page, chart: str, css: str) -> list[str]:
    return page.locator(f"#chart-{chart} text.{css}").all_text_contents()  # SVG has no innerText


def test_the_dashboard_draws_its_charts_in_svg_with_the_window_s_numbers(
    page: Page, start_server: Callable[..., Server]
) -> None:
    server = start_server(RULES_DIR, REGO_DIR)
    for org in (10, 11):
        assert server.decide(facts(org_id=org)).json()["result"]["execution"]["status"] == "APPROVED"
    assert server.decide(facts(org_id=12, attempts=3)).json()["result"]["execution"]["status"] == "ESCALATED"
    denied = server.decide(facts(org_id=13, attempts=2, failures=2, status="offline")).json()["result"]
    assert denied["execution"]["status"] == "ESCALATED"
    executed, waiting = ask(server, "dash-executed"), ask(server, "dash-waiting")
    response = server.client.post(f"/operations/decisions/{executed}/execute", json={"reason": "ok"},
                                  headers={CALLER: "carol"})  # fmt: skip
    assert response.status_code == 200, response.text

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server.url}/ui/dashboard")
    assert page.title() == "Dashboard · opsgate"
    assert {url.split("/ui/")[0] for url in requested} == {server.url}, "no asset from anywhere else"
    assert page.locator("script").count() == 0
    assert page.locator("#total").inner_text() == "6"
    assert page.locator("#escalation-rate").inner_text() == "33.3%"
    assert page.locator("#breaker-state").inner_text() == "closed"

    # decisions over time: the last hour by minute, stacked by current status
    assert svg_texts(page, "timeline", "legend") == ["APPROVED 2", "PENDING_APPROVAL 1", "EXECUTED 1", "ESCALATED 2"]
    bars = page.locator("#chart-timeline g.bar")
    assert bars.count() in (60, 61)  # the hour's minutes, the first one cut by the window's start
    totals = [int(t) for t in bars.evaluate_all("gs => gs.map(g => g.dataset.total)")]
    assert sum(totals) == 6 and sorted(svg_texts(page, "timeline", "total"), key=int) == [
        str(t) for t in sorted(t for t in totals if t)
    ]
    assert svg_texts(page, "denials", "label") == ["ops.min_confidence"]
    assert svg_texts(page, "denials", "value") == ["1 (16.7% of decisions)"]
    assert svg_texts(page, "escalation", "value") == ["33.3% escalated (2 of 6 decisions)"]
    assert svg_texts(page, "latency", "label") == ["p50", "p90", "p99"]
    latency = server.client.get("/dashboard").json()["latency_ms"]
    assert svg_texts(page, "latency", "value") == [f"{latency[p]:.2f} ms" for p in ("p50", "p90", "p99")]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert svg_texts(page, "pending", "label") == [f"deploy …{waiting[-8:]}"]
    assert re.fullmatch(r"\d+ s old, expires in 5\d min \d+ s", svg_texts(page, "pending", "value")[0])
    assert svg_texts(page, "breaker", "value") == ["OPA circuit breaker: closed"]
    screenshot(page, "dashboard.png")


# --- with API keys: an approver signs in to the queue, an auditor reads it --------------------------------

KEYS = {
    "approver": ("approve", "og_approver-key-for-the-work-pages-0123456789"),
    "auditor": ("audit", "og_auditor-key-for-the-work-pages-01234567890"),
    "decider": ("decide", "og_decider-key-for-the-work-pages-01234567890"),
}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    keys = ",".join(f"{name}:{role}:{hashlib.sha256(key.encode()).hexdigest()}" for name, (role, key) in KEYS.items())
    running = Server(tmp_path_factory.mktemp("keyed"), RULES_DIR, REGO_DIR, opa_bin, OPSGATE_API_KEYS=keys)
    yield running
    running.stop()


def ask_keyed(server: Server, component: str) -> str:
    response = server.client.post(
        "/decide/deploy", json=deploy_facts(component), headers={"Authorization": f"Bearer {KEYS['decider'][1]}"}
    )
    assert response.status_code == 200, response.text
    decision_id: str = response.json()["result"]["decision_id"]
    return decision_id


def status_of(server: Server, decision_id: str) -> str:
    response = server.client.get(f"/decisions/{decision_id}", headers={"Authorization": f"Bearer {KEYS['auditor'][1]}"})
    status: str = response.json()["status"]
    return status


def sign_in(page: Page, server: Server, who: str) -> None:
    page.goto(f"{server.url}/ui/login")
    page.locator("form.login input[name=key]").fill(KEYS[who][1])
    page.locator("#sign-in").click()


def test_an_approver_signs_in_to_the_queue_and_answers_with_the_session_s_csrf_token(page: Page, keyed: Server) -> None:
    decision_id = ask_keyed(keyed, "keyed-approve")
    sign_in(page, keyed, "approver")
    page.wait_for_url(f"{keyed.url}/ui/pending")  # the decision list needs audit: the queue instead
    assert page.locator("#signed-in").inner_text() == "approver"
    forged = page.request.post(f"{keyed.url}/ui/pending/{decision_id}/execute", form={"reason": "forged"})
    assert forged.status == 403
    assert "CSRF token is missing or wrong" in forged.text()
    assert status_of(keyed, decision_id) == "PENDING_APPROVAL"

    answer_in_page(page, decision_id, "execute", "checked the canary")
    page.wait_for_url(f"**/ui/pending?answered={decision_id}&status=EXECUTED")
    assert status_of(keyed, decision_id) == "EXECUTED"
    assert page.goto(f"{keyed.url}/ui/decisions").status == 403


def test_an_auditor_reads_the_queue_without_the_forms(page: Page, keyed: Server) -> None:
    decision_id = ask_keyed(keyed, "keyed-audit")
    sign_in(page, keyed, "auditor")
    page.wait_for_url(f"{keyed.url}/ui/decisions")
    page.goto(f"{keyed.url}/ui/pending")
    assert page.locator(f"#pending-{decision_id} .requested-by").inner_text() == "decider"
    assert page.locator("form.answer").count() == 0
    refused = page.request.post(f"{keyed.url}/ui/pending/{decision_id}/execute", form={"reason": "not mine to say"})
    assert refused.status == 403
    assert status_of(keyed, decision_id) == "PENDING_APPROVAL"

"""The reviewer pages under /ui, in a real Chromium driven by Playwright, against a real ``opsgate serve``.

Chromium is Debian's (``make browser`` installs it); Playwright's own browser download is not used.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.conftest import ROOT
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts

StartServer = Callable[..., Server]

CHROMIUM = os.environ.get("OPSGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
ARTIFACTS = ROOT / "tests" / "artifacts"

RETRY_CONFIDENCE = "confidence: 0.85 - 0.05 * process.attempts - 0.10 * history.failures"


def facts(org_id: int, attempts: int = 1, failures: int = 0, status: str = "available") -> dict[str, Any]:
    """EXAMPLE_FACTS (attempts 1, failures 0, worker-001 available) with what a test changes."""
    return {**ops_facts(attempts=attempts, failures=failures, status=status), "org_id": org_id}


def decide(server: Server, body: dict[str, Any]) -> str:
    response = server.decide(body)
    assert response.status_code == 200, response.text
    decision_id: str = response.json()["result"]["decision_id"]
    return decision_id


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


@pytest.fixture(scope="module")
def decided(server: Server) -> dict[str, str]:
    """Four decisions on the module's server, oldest first; the only decisions it ever makes."""
    return {
        # dispatch: 0.90 - 0.05 * 1 = 0.85
        "dispatch": decide(server, facts(org_id=10)),
        # retry-after-failure: 0.85 - 0.05 * 1 - 0.10 * 1 = 0.70
        "retry": decide(server, facts(org_id=11, failures=1)),
        # escalate-attempts: 3 >= max_attempts 3, confidence 0.95
        "escalate": decide(server, facts(org_id=12, attempts=3)),
        # reassign-unavailable: 0.80 - 0.05 * 2 - 0.10 * 2 = 0.50 < 0.6, denied by OPS-MIN-CONFIDENCE
        "denied": decide(server, facts(org_id=13, attempts=2, failures=2, status="offline")),
    }


# Decision, Status, Confidence, Rule that decided, Denied by, org, Caller: the hand-written row of each
ROWS = {
    "dispatch": ["OPS.DISPATCH", "APPROVED", "0.85", "dispatch", "", "10", "127.0.0.1"],
    "retry": ["OPS.RETRY", "APPROVED", "0.7", "retry-after-failure", "", "11", "127.0.0.1"],
    "escalate": ["OPS.ESCALATE", "ESCALATED", "0.95", "escalate-attempts", "", "12", "127.0.0.1"],
    "denied": ["OPS.ESCALATE", "ESCALATED", "0.5", "reassign-unavailable", "OPS-MIN-CONFIDENCE", "13", "127.0.0.1"],
}


def table_rows(page: Page) -> list[list[str]]:
    """The cells of ``#decisions`` without the time and ruleset columns (checked separately)."""
    out = []
    for row in page.locator("#decisions tbody tr").all():
        cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
        out.append(cells if len(cells) == 1 else cells[1:6] + cells[7:])
    return out


def open_decision(page: Page, server: Server, decision_id: str) -> None:
    page.goto(f"{server.url}/ui/decisions/{decision_id}")
    assert page.locator("dl code").first.inner_text() == decision_id


def test_decision_list_shows_every_decision_newest_first(page: Page, server: Server, decided: dict[str, str]) -> None:
    page.goto(f"{server.url}/ui/decisions")
    assert page.title() == "Decisions · opsgate"
    assert table_rows(page) == [ROWS["denied"], ROWS["escalate"], ROWS["retry"], ROWS["dispatch"]]
    rows = page.locator("#decisions tbody tr")
    for index, name in enumerate(["denied", "escalate", "retry", "dispatch"]):
        link = rows.nth(index).locator("td").first.locator("a")
        assert link.get_attribute("href") == f"/ui/decisions/{decided[name]}"
        assert rows.nth(index).locator("td").nth(6).inner_text().startswith("ops ")
    # the form shows every filter, empty
    names = page.locator("form.filters input").evaluate_all("inputs => inputs.map(i => [i.name, i.value])")
    assert names == [
        [name, ""]
        for name in ("since", "until", "ruleset", "decision_type", "status", "org_id", "rule", "denied_by", "caller")
    ]
    assert page.locator("form.filters input[placeholder]").evaluate_all(PLACEHOLDERS_CUT) == []
    assert page.locator("form.filters input[name=status]").get_attribute("placeholder") == "now, e.g. EXECUTED"


# the filters whose placeholder is wider than the room inside its input (the browser cuts it off)
PLACEHOLDERS_CUT = """inputs => inputs.filter(input => {
  const style = getComputedStyle(input), context = document.createElement("canvas").getContext("2d");
  context.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return context.measureText(input.placeholder).width > room;
}).map(input => input.name)"""


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("decision_type", "OPS.RETRY", ["retry"], id="decision_type"),
        pytest.param("rule", "escalate-attempts", ["escalate"], id="rule-that-decided"),
        # a rule that matched but did not decide counts too: failures 2 > 0 in the denied decision
        pytest.param("rule", "retry-after-failure", ["denied", "retry"], id="rule-that-only-matched"),
        pytest.param("status", "ESCALATED", ["denied", "escalate"], id="status"),
        pytest.param("denied_by", "OPS-MIN-CONFIDENCE", ["denied"], id="denied_by-id"),
        pytest.param("denied_by", "ops.min_confidence", ["denied"], id="denied_by-policy"),
        pytest.param("org_id", "10", ["dispatch"], id="org_id"),
    ],
)
def test_filter_form_keeps_only_the_matching_rows(
    page: Page, server: Server, decided: dict[str, str], field: str, value: str, expected: list[str]
) -> None:
    page.goto(f"{server.url}/ui/decisions")
    assert len(table_rows(page)) == 4
    page.locator(f"form.filters input[name={field}]").fill(value)
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url(f"**/ui/decisions?*{field}=*")
    assert table_rows(page) == [ROWS[name] for name in expected]
    assert page.locator(f"form.filters input[name={field}]").input_value() == value


def test_filters_combine_and_say_when_nothing_matches(page: Page, server: Server, decided: dict[str, str]) -> None:
    page.goto(f"{server.url}/ui/decisions")
    page.locator("form.filters input[name=decision_type]").fill("OPS.RETRY")
    page.locator("form.filters input[name=org_id]").fill("10")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**/ui/decisions?*org_id=10*")
    assert table_rows(page) == [["No decision matches these filters."]]


def test_bad_filter_shows_the_error_page(page: Page, server: Server, decided: dict[str, str]) -> None:
    page.goto(f"{server.url}/ui/decisions")
    page.locator("form.filters input[name=since]").fill("yesterday")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**/ui/decisions?*since=yesterday*")
    assert (
        page.locator("h1").inner_text()
        == "400: invalid query parameter since: not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)"
    )


def test_decision_page_shows_the_fired_rules_yaml_and_the_explanation(
    page: Page, server: Server, decided: dict[str, str]
) -> None:
    page.goto(f"{server.url}/ui/decisions")
    page.locator("#decisions tbody tr", has_text="OPS.RETRY").locator("a").click()
    page.wait_for_url(f"**/ui/decisions/{decided['retry']}")
    assert page.locator("h1").inner_text() == "OPS.RETRY APPROVED"

    decided_rule = page.locator("#rule-retry-after-failure")
    assert decided_rule.locator("h3").inner_text() == "retry-after-failure (decided): Retry after a failure"
    assert "rules/ops.yaml:109, priority 20" in decided_rule.inner_text()
    snippet = decided_rule.locator("pre.snippet").inner_text()
    assert snippet.splitlines()[0] == "  - id: retry-after-failure"
    assert "    when: history.failures > 0" in snippet.splitlines()
    assert f"      {RETRY_CONFIDENCE}" in snippet.splitlines()
    assert "id: dispatch" not in snippet  # only the one rule's block
    # dispatch (when: true) matched too, but did not decide; escalate-attempts did not match
    assert page.locator("#rule-dispatch h3").inner_text() == "dispatch: Dispatch to the resource"
    assert page.locator("#rule-dispatch pre.snippet").inner_text().splitlines()[4] == "    when: true"
    assert page.locator("#rule-escalate-attempts").count() == 0
    assert page.locator("section.rule").count() == 2

    sentences = page.locator("#explanation li").all_inner_texts()
    assert len(sentences) == 3
    assert sentences[0].startswith(
        "Retry after a failure: history.failures 1 > 0 (rule retry-after-failure, rules/ops.yaml:109, version "
    )
    assert sentences[1].startswith("Dispatch to the resource: always (rule dispatch, rules/ops.yaml:123, version ")
    assert sentences[1].endswith("It matched, but a rule of higher priority decided.")
    assert sentences[2] == (
        "Decision OPS.RETRY with confidence 0.7: APPROVED. Rule retry-after-failure (rules/ops.yaml:109) "
        "proposed OPS.RETRY with confidence 0.7; guardrails allowed it."
    )
    assert json.loads(page.locator("#facts").inner_text()) == {
        "org_id": 11,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
        "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
        "history": {"failures": 1, "latency": 500},
        "candidates": [],
    }
    assert page.locator("section.policy").count() == 0
    assert "No guardrail objected." in page.locator("main").inner_text()
    assert page.locator("#outcomes tbody").inner_text().strip() == "No outcome reported yet."


def test_denied_decision_shows_the_guardrail_and_its_rego(page: Page, server: Server, decided: dict[str, str]) -> None:
    open_decision(page, server, decided["denied"])
    assert page.locator("h1").inner_text() == "OPS.ESCALATE ESCALATED"
    assert page.locator("#rule-reassign-unavailable h3").inner_text() == (
        "reassign-unavailable (decided): Resource cannot take the process"
    )
    policy = page.locator("#policy-OPS-MIN-CONFIDENCE")
    assert policy.locator("h3").inner_text() == "OPS-MIN-CONFIDENCE (denied): Confidence below minimum"
    assert policy.locator("p").inner_text() == (
        "confidence 0.5 is below the minimum 0.6 — rego/guardrails/ops/min_confidence/min_confidence.rego:25"
    )
    rego = policy.locator("pre.snippet").inner_text().splitlines()
    assert rego[0] == "# METADATA"
    assert "# title: Confidence below minimum" in rego
    assert "\tconfidence < _min_confidence" in rego
    assert "# title: Confidence missing" not in rego  # the other rule of the same policy id
    sentences = page.locator("#explanation li").all_inner_texts()
    assert sentences[0].startswith(
        'Resource cannot take the process: resource.status "offline" ≠ "available" or resource.capacity 100 = 0'
    )
    assert (
        "Guardrail OPS-MIN-CONFIDENCE (Confidence below minimum) denied: confidence 0.5 is below the minimum 0.6 "
        "(rego/guardrails/ops/min_confidence/min_confidence.rego:25)." in sentences
    )


def test_reported_outcome_appears_on_the_decision_page(page: Page, server: Server, decided: dict[str, str]) -> None:
    response = server.client.post(
        f"/decisions/{decided['dispatch']}/outcome", json={"status": "SUCCEEDED", "detail": "ran on worker-001"}
    )
    assert response.status_code == 201, response.text
    open_decision(page, server, decided["dispatch"])
    rows = page.locator("#outcomes tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[1:4] == ["SUCCEEDED", "ran on worker-001", "127.0.0.1"]
    assert rows.first.locator(".status.SUCCEEDED").count() == 1


def test_replay_with_the_same_version_finds_no_difference(page: Page, server: Server, decided: dict[str, str]) -> None:
    open_decision(page, server, decided["retry"])
    assert page.locator("#replay-result").count() == 0
    page.locator("#replay").click()
    page.wait_for_url(f"**/ui/decisions/{decided['retry']}/replay")
    result = page.locator("#replay-result")
    assert result.inner_text().endswith(": no difference.")
    assert result.locator("table").count() == 0
    # the page is still the whole decision
    assert page.locator("#rule-retry-after-failure pre.snippet").count() == 1


def test_replay_after_a_rule_change_shows_the_new_confidence_and_the_diff(
    page: Page, copied_dirs: tuple[Path, Path], start_server: StartServer
) -> None:
    rules, rego = copied_dirs
    first = start_server(rules, rego)
    decision_id = decide(first, facts(org_id=11, failures=1))  # 0.85 - 0.05 - 0.10 = 0.70
    first.stop()

    ops = rules / "ops.yaml"
    text = ops.read_text()
    assert text.count(RETRY_CONFIDENCE) == 1
    # 0.95 - 0.05 * 1 - 0.10 * 1 = 0.80: still above the 0.6 minimum, so only the confidence changes
    ops.write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.95")))
    second = start_server(rules, rego)
    assert second.db == first.db  # same tmp_path: the new server reads the old decision

    open_decision(page, second, decision_id)
    # the rule as it was when decided, not as it is now
    assert (
        f"      {RETRY_CONFIDENCE}" in page.locator("#rule-retry-after-failure pre.snippet").inner_text().splitlines()
    )
    page.locator("#replay").click()
    page.wait_for_url(f"**/ui/decisions/{decision_id}/replay")
    result = page.locator("#replay-result")
    assert result.locator("p").inner_text().endswith(": 1 difference(s).")
    versions = result.locator("p code").all_inner_texts()
    assert len(versions) == 2 and versions[0] != versions[1]
    assert result.locator("thead th").all_inner_texts() == ["Field", "Then", "Now"]
    assert [row.locator("td").all_inner_texts() for row in result.locator("tbody tr").all()] == [
        ["decision.confidence", "0.7", "0.8"]
    ]

    page.goto(f"{second.url}/ui/rulesets")
    versions_table = page.locator("#versions tbody tr")
    assert versions_table.count() == 2
    assert "(current)" in versions_table.nth(0).inner_text()
    assert "(current)" not in versions_table.nth(1).inner_text()
    assert [row.locator("td").nth(3).inner_text() for row in versions_table.all()] == ["1", "1"]
    # the form compares the previous version with the current one by default
    page.get_by_role("button", name="Show diff").click()
    page.wait_for_url("**/ui/rulesets/diff?*")
    diff = page.locator("#diff")
    lines = diff.locator("span").all_inner_texts()
    assert "--- a/rules/ops.yaml" in lines
    assert "+++ b/rules/ops.yaml" in lines
    assert diff.locator("span.del").all_inner_texts() == [f"-      {RETRY_CONFIDENCE}"]
    assert diff.locator("span.add").all_inner_texts() == [f"+      {RETRY_CONFIDENCE.replace('0.85', '0.95')}"]
    assert not any(line.startswith("--- a/rego/") for line in lines)


def test_decision_page_screenshot(page: Page, server: Server, decided: dict[str, str]) -> None:
    open_decision(page, server, decided["denied"])
    page.locator("#replay").click()
    page.wait_for_url(f"**/ui/decisions/{decided['denied']}/replay")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "decision-page.png"
    target.unlink(missing_ok=True)
    page.screenshot(path=str(target), full_page=True)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280
    assert height > 2 * VIEWPORT["height"]  # the whole page, not the viewport
    assert len(data) > 50_000


# --- sign-in with an API key (a server with keys configured) -------------------------------------------

REVIEWER_KEY = "og_reviewer-key-for-the-browser-tests-0123456789"
DECIDER_KEY = "og_decider-key-for-the-browser-tests-01234567890"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    hashes = {key: hashlib.sha256(key.encode()).hexdigest() for key in (REVIEWER_KEY, DECIDER_KEY)}
    keys = f"reviewer:audit:{hashes[REVIEWER_KEY]},decider:decide:{hashes[DECIDER_KEY]}"
    running = Server(tmp_path_factory.mktemp("keyed"), ROOT / "rules", ROOT / "rego", opa_bin, OPSGATE_API_KEYS=keys)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keyed_decision(keyed: Server) -> str:
    response = keyed.client.post("/decide", json=facts(org_id=20), headers={"Authorization": f"Bearer {DECIDER_KEY}"})
    assert response.status_code == 200, response.text
    decision_id: str = response.json()["result"]["decision_id"]
    return decision_id


def sign_in(page: Page, key: str) -> None:
    page.locator("form.login input[name=key]").fill(key)
    page.locator("#sign-in").click()


def test_sign_in_with_a_key_opens_the_page_asked_for_and_sign_out_ends_it(
    page: Page, keyed: Server, keyed_decision: str
) -> None:
    page.goto(f"{keyed.url}/ui/decisions/{keyed_decision}")
    page.wait_for_url(f"**/ui/login?next=/ui/decisions/{keyed_decision}")
    assert page.title() == "Sign in · opsgate"
    sign_in(page, REVIEWER_KEY)
    page.wait_for_url(f"{keyed.url}/ui/decisions/{keyed_decision}")
    assert page.locator("h1").inner_text() == "OPS.DISPATCH APPROVED"
    assert page.locator("#signed-in").inner_text() == "reviewer"
    # the JSON chain heads take a Bearer key, not the pages' cookie: no link to them
    assert page.locator("header nav a").all_inner_texts() == [
        "Decisions",
        "Pending approval",
        "Dashboard",
        "Ruleset versions",
    ]
    assert page.locator("dl dd").nth(2).inner_text() == "decider"  # the caller: the key's name
    cookie = next(c for c in page.context.cookies() if c["name"] == "opsgate_session")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"], cookie["secure"]) == (True, "Strict", "/ui", False)
    assert REVIEWER_KEY not in cookie["value"]

    page.locator("#sign-out").click()
    page.wait_for_url(f"{keyed.url}/ui/login")
    assert [c["name"] for c in page.context.cookies() if c["name"] == "opsgate_session"] == []
    page.goto(f"{keyed.url}/ui/decisions")
    page.wait_for_url("**/ui/login?next=/ui/decisions")


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        pytest.param("og_not-a-key", 401, "Unknown API key.", id="unknown-key"),
        pytest.param(
            DECIDER_KEY,
            403,
            "The key 'decider' has no audit or approve role: the pages need audit, approve or admin.",
            id="no-audit-role",
        ),
    ],
)
def test_a_bad_key_stays_on_the_sign_in_page(page: Page, keyed: Server, key: str, status: int, message: str) -> None:
    page.goto(f"{keyed.url}/ui/decisions")
    page.wait_for_url("**/ui/login?next=/ui/decisions")
    with page.expect_response(f"{keyed.url}/ui/login") as answer:
        sign_in(page, key)
    assert answer.value.status == status
    assert page.locator("#login-error").inner_text() == message
    assert [c for c in page.context.cookies() if c["name"] == "opsgate_session"] == []
    # the form still comes back to the page asked for, with a fresh token
    sign_in(page, REVIEWER_KEY)
    page.wait_for_url(f"{keyed.url}/ui/decisions")


def test_a_sign_in_posted_without_the_form_token_is_refused(page: Page, keyed: Server) -> None:
    answer = page.request.post(f"{keyed.url}/ui/login", form={"key": REVIEWER_KEY, "next": "/ui/decisions"})
    assert answer.status == 403
    assert "403: the form&#39;s CSRF token is missing or wrong" in answer.text()


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["without-token", "wrong-token"])
def test_a_replay_posted_without_the_session_csrf_token_is_refused(
    page: Page, keyed: Server, keyed_decision: str, token: str | None
) -> None:
    page.goto(f"{keyed.url}/ui/decisions/{keyed_decision}")
    sign_in(page, REVIEWER_KEY)
    page.wait_for_url(f"{keyed.url}/ui/decisions/{keyed_decision}")
    field = page.locator("form[action$='/replay'] input[name=csrf_token]")
    if token is None:
        field.evaluate("input => input.remove()")
    else:
        field.evaluate("(input, value) => { input.value = value }", token)
    with page.expect_response(f"**/ui/decisions/{keyed_decision}/replay") as answer:
        page.locator("#replay").click()
    assert answer.value.status == 403
    assert page.locator("h1").inner_text() == (
        "403: the form's CSRF token is missing or wrong: reload the page and try again"
    )
    assert page.locator("#replay-result").count() == 0
    # with the page's own token the same replay goes through
    open_decision(page, keyed, keyed_decision)
    page.locator("#replay").click()
    page.wait_for_url(f"**/ui/decisions/{keyed_decision}/replay")
    assert page.locator("#replay-result").inner_text().endswith(": no difference.")


def test_a_sign_out_posted_without_the_session_csrf_token_is_refused_and_the_session_holds(
    page: Page, keyed: Server
) -> None:
    page.goto(f"{keyed.url}/ui/decisions")
    sign_in(page, REVIEWER_KEY)
    page.wait_for_url(f"{keyed.url}/ui/decisions")
    page.locator("form.logout input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response("**/ui/logout") as answer:
        page.locator("#sign-out").click()
    assert answer.value.status == 403
    assert page.locator("h1").inner_text() == (
        "403: the form's CSRF token is missing or wrong: reload the page and try again"
    )
    page.goto(f"{keyed.url}/ui/decisions")
    assert page.locator("#signed-in").inner_text() == "reviewer"

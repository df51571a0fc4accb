"""The reviewer pages in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "tests" / "artifacts"
RETRY_CONFIDENCE = "confidence: 0.85 - 0.05 * process.attempts - 0.10 * history.failures"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1200, "height": 900})
    yield opened
    opened.close()


def decide(server: Server, org_id: int, **facts: Any) -> dict[str, Any]:
    return result_of(server, {**ops_facts(**facts), "org_id": org_id})


def rows(page: Page) -> list[str]:
    return [text.split("\t")[1] for text in page.locator("#decisions tbody tr").all_inner_texts()]


def test_the_list_filters_and_a_decision_shows_its_rule_snippet_and_explanation(server: Server, page: Page) -> None:
    dispatch = decide(server, 9101)
    retry = decide(server, 9101, failures=1)
    decide(server, 9101, attempts=3)

    page.goto(f"{server.url}/ui/decisions?org_id=9101")
    assert rows(page) == ["OPS.ESCALATE", "OPS.RETRY", "OPS.DISPATCH"]

    page.fill("input[name=decision_type]", "OPS.RETRY")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**decision_type=OPS.RETRY**")
    assert rows(page) == ["OPS.RETRY"]

    page.click(f"a[href='/ui/decisions/{retry['decision_id']}']")
    page.wait_for_url(f"**/ui/decisions/{retry['decision_id']}")
    assert page.locator("h1").inner_text() == "OPS.RETRY APPROVED"
    snippet = page.locator("#rule-retry-after-failure pre.snippet").inner_text()
    assert snippet.startswith("  - id: retry-after-failure\n    title: Retry after a failure\n")
    assert "    when: history.failures > 0\n" in snippet and RETRY_CONFIDENCE in snippet
    assert "rules/ops.yaml:109" in page.locator("#rule-retry-after-failure").inner_text()
    explanation = page.locator("#explanation li").first.inner_text()
    assert explanation.startswith("Retry after a failure: history.failures 1 > 0 (rule retry-after-failure")

    page.click("#replay")
    page.wait_for_selector("#replay-result")
    assert "no difference" in page.locator("#replay-result").inner_text()
    assert dispatch["decision_id"] not in page.content()


def test_a_denied_decision_shows_the_rego_of_its_guardrail_and_a_readable_screenshot(
    server: Server, page: Page
) -> None:
    denied = decide(server, 9102, attempts=2, failures=2, status="offline")
    server.client.post(f"/decisions/{denied['decision_id']}/outcome", json={"status": "CANCELLED", "detail": "manual"})
    page.goto(f"{server.url}/ui/decisions/{denied['decision_id']}")
    policy = page.locator("#policy-OPS-MIN-CONFIDENCE")
    assert "confidence 0.5 is below the minimum 0.6" in policy.inner_text()
    rego = policy.locator("pre.snippet").inner_text()
    assert rego.startswith("# METADATA\n# title: Confidence below minimum\n")
    assert "deny contains result.fail(rego.metadata.chain()" in rego and rego.rstrip().endswith("}")
    assert page.locator("#outcomes tbody tr").first.inner_text().split("\t")[1:3] == ["CANCELLED", "manual"]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "decision-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_versions_and_their_diff_and_a_replay_after_a_change(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path], page: Page
) -> None:
    rules, rego = copied_dirs
    first = start_server(rules, rego)
    old = result_of(first, ops_facts(failures=1))
    first.stop()
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    second = start_server(rules, rego)

    page.goto(f"{second.url}/ui/rulesets")
    assert page.locator("#versions tbody tr").count() == 2
    assert "(current)" in page.locator("#versions tbody tr").first.inner_text()
    page.click("form button[type=submit]")
    page.wait_for_selector("#diff")
    assert page.locator("#diff span.del").all_inner_texts() == [f"-      {RETRY_CONFIDENCE}"]
    assert page.locator("#diff span.add").all_inner_texts() == [f"+      {RETRY_CONFIDENCE.replace('0.85', '0.80')}"]

    page.goto(f"{second.url}/ui/decisions/{old['decision_id']}")
    page.click("#replay")
    page.wait_for_selector("#replay-result")
    assert "1 difference(s)" in page.locator("#replay-result").inner_text()
    cells = page.locator("#replay-result tr.changed td").all_inner_texts()
    assert cells == ["decision.confidence", "0.7", "0.65"]

"""/schema against a real ``opsgate serve``: the API reference page renders in Chromium with every request
off the machine cut (its script is opsgate's own copy of Redoc), and the OpenAPI document follows the
rulesets being served, through a reload.

Chromium is Debian's (``make browser``); Redoc's bundle is fetched by ``make redoc``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect, sync_playwright

from tests.conftest import REGO_DIR, ROOT, RULES_DIR
from tests.e2e.server import JSON, Server

CHROMIUM = os.environ.get("OPSGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ARTIFACTS = ROOT / "tests" / "artifacts"
SHIPPED = sorted(path.stem for path in RULES_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_the_reference_page_renders_every_decide_route_with_the_network_cut(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    requested: list[str] = []
    cut: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            cut.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.on("console", lambda message: failures.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{server.url}/schema")
        # Redoc's menu lists each loaded ruleset's own route, by its summary
        for name in SHIPPED:
            expect(page.get_by_role("menuitem", name=f"Decide with the {name} ruleset", exact=False)).to_have_count(1)
        # the ops facts schema is drawn, with the description its YAML gives a field
        expect(page.get_by_text("The organisation the process belongs to.").first).to_be_attached()
        assert page.title() == "opsgate"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-reference.png"))
    finally:
        context.close()
    assert cut == []
    assert failures == []
    assert {urlsplit(url).path for url in requested} == {"/schema", "/schema/redoc.standalone.js"}
    assert {urlsplit(url).netloc for url in requested} == {urlsplit(server.url).netloc}


def test_the_document_follows_a_reload_that_changes_a_fact_schema_and_adds_a_ruleset(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("tests"))
    server = start_server(rules, REGO_DIR)
    before = server.client.get("/schema/openapi.json").json()
    assert "region" not in before["components"]["schemas"]["OpsFacts"]["properties"]
    assert "/decide/rollout" not in before["paths"]

    ops = (rules / "ops.yaml").read_text()
    field = "  region: {type: str, required: false, description: Where the process runs.}\n"
    (rules / "ops.yaml").write_text(ops.replace("\nfacts:\n", "\nfacts:\n" + field, 1))
    deploy = (rules / "deploy.yaml").read_text()
    (rules / "rollout.yaml").write_text(deploy.replace("\nname: deploy\n", "\nname: rollout\n", 1))
    reloaded = server.client.post("/admin/reload", headers=JSON)
    assert reloaded.status_code == 200, reloaded.text

    after = server.client.get("/schema/openapi.json").json()
    region = after["components"]["schemas"]["OpsFacts"]["properties"]["region"]
    assert region["description"] == "Where the process runs."
    assert "region" not in after["components"]["schemas"]["OpsFacts"]["required"]
    rollout = after["paths"]["/decide/rollout"]["post"]
    assert rollout["operationId"] == "decide_rollout"
    assert rollout["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RolloutFacts"
    }
    assert (
        after["components"]["schemas"]["RolloutFacts"]["required"]
        == (before["components"]["schemas"]["DeployFacts"]["required"])
    )
    assert "/decide/rollout/batch" in after["paths"]
    # the YAML document and the page say the same
    assert "Where the process runs." in server.client.get("/schema/openapi.yaml").text
    assert "Decide with the rollout ruleset" in server.client.get("/schema").text

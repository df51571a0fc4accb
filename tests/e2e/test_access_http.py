"""Who may do what, and how often, on a real ``opsgate serve``: outcomes only for approved decisions and
only from their caller (or an approve or admin key), JSON endpoints only for JSON (no cross-site posts),
unauthenticated requests limited by client address, and forwarded addresses believed only from the
configured proxies."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import JSON, Server
from tests.e2e.test_approvals_http import CALLER, answer, ask, deploy_facts, pending_ids
from tests.e2e.test_auth_http import TOKENS, as_, keys_config
from tests.e2e.test_ops_decisions import ops_facts

OUTCOME = {"status": "SUCCEEDED", "detail": "ran"}


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def outcomes(server: Server, decision_id: str, headers: dict[str, str] | None = None) -> list[Any]:
    shown = server.client.get(f"/decisions/{decision_id}", headers=headers or {})
    assert shown.status_code == 200, shown.text
    return [o["record"]["caller"] for o in shown.json()["outcomes"]]


def report(server: Server, decision_id: str, headers: dict[str, str]) -> httpx.Response:
    return server.client.post(f"/decisions/{decision_id}/outcome", json=OUTCOME, headers=headers)


def logged(server: Server) -> int:
    with sqlite3.connect(server.db) as connection:
        return int(connection.execute("SELECT count(*) FROM log_entries").fetchone()[0])


# --- outcomes --------------------------------------------------------------------------


@pytest.fixture
def keyed(start_server: Callable[..., Server], tmp_path: Path) -> Server:
    return start_server(RULES_DIR, REGO_DIR, **keys_config(tmp_path))


def keyed_decision(server: Server, facts: dict[str, Any], path: str = "/decide") -> dict[str, Any]:
    response = server.client.post(path, json=facts, headers=as_("service"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_an_outcome_of_a_decision_not_approved_is_409_and_not_logged(keyed: Server) -> None:
    pending = keyed_decision(keyed, deploy_facts("outcome-pending"), "/decide/deploy")
    rejected = keyed_decision(keyed, deploy_facts("outcome-rejected"), "/decide/deploy")
    escalated = keyed_decision(keyed, ops_facts(attempts=3))
    assert [d["execution"]["status"] for d in (pending, rejected, escalated)] == [
        "PENDING_APPROVAL", "PENDING_APPROVAL", "ESCALATED"
    ]  # fmt: skip
    refusal = keyed.client.post(
        f"/operations/decisions/{rejected['decision_id']}/reject", json={"reason": "no"}, headers=as_("approve")
    )
    assert refusal.status_code == 200, refusal.text
    for decided, state in ((pending, "PENDING_APPROVAL"), (rejected, "REJECTED"), (escalated, "ESCALATED")):
        for who in ("service", "approve", "admin"):  # even its caller, even an admin
            response = report(keyed, decided["decision_id"], as_(who))
            assert error_of(response) == (409, "outcome_not_allowed"), (state, who)
            assert f"is {state}" in response.json()["error"]["message"]
        assert outcomes(keyed, decided["decision_id"], as_("audit")) == []


def test_an_outcome_from_another_decide_key_is_403_and_not_logged(keyed: Server) -> None:
    decided = keyed_decision(keyed, ops_facts())
    assert decided["execution"]["status"] == "APPROVED"
    response = report(keyed, decided["decision_id"], as_("decide"))  # "decider" did not ask for it
    assert error_of(response) == (403, "outcome_forbidden")
    assert "'decider' did not ask for decision" in response.json()["error"]["message"]
    pending = keyed_decision(keyed, deploy_facts("outcome-theirs"), "/decide/deploy")
    assert error_of(report(keyed, pending["decision_id"], as_("decide"))) == (403, "outcome_forbidden")
    assert outcomes(keyed, decided["decision_id"], as_("audit")) == []


def test_the_caller_an_approver_or_an_admin_reports_the_outcome_once_approved(keyed: Server) -> None:
    approved = keyed_decision(keyed, ops_facts())
    assert report(keyed, approved["decision_id"], as_("service")).status_code == 201
    executed = keyed_decision(keyed, deploy_facts("outcome-executed"), "/decide/deploy")
    approval = keyed.client.post(
        f"/operations/decisions/{executed['decision_id']}/execute", json={"reason": "ok"}, headers=as_("approve")
    )
    assert approval.status_code == 200, approval.text
    for who in ("service", "approve", "admin"):
        response = report(keyed, executed["decision_id"], as_(who))
        assert response.status_code == 201, (who, response.text)
    assert outcomes(keyed, approved["decision_id"], as_("audit")) == ["service"]
    assert outcomes(keyed, executed["decision_id"], as_("audit")) == ["service", "approver", "root"]


def test_in_open_mode_the_outcome_is_reported_by_the_same_caller_once_executed(server: Server) -> None:
    decided = ask(server, "outcome-open", by="alice")
    assert error_of(report(server, decided["decision_id"], {CALLER: "alice"})) == (409, "outcome_not_allowed")
    assert answer(server, decided["decision_id"], "execute", "bob").status_code == 200
    assert error_of(report(server, decided["decision_id"], {CALLER: "mallory"})) == (403, "outcome_forbidden")
    assert error_of(report(server, decided["decision_id"], {})) == (403, "outcome_forbidden")  # the address
    assert report(server, decided["decision_id"], {CALLER: "alice"}).status_code == 201
    assert outcomes(server, decided["decision_id"]) == ["alice"]


# --- JSON only ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # what a cross-site form (enctype=text/plain) or a no-cors fetch with a string body sends
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,  # a no-cors fetch without a body sends no Content-Type at all
    ],
)
def test_in_open_mode_a_post_that_is_not_json_is_415_and_does_nothing(server: Server, content_type: str | None) -> None:
    pending = ask(server, f"cross-site-{(content_type or 'none').split('/')[0]}")
    version = server.client.get("/ready").json()["version"]
    before = logged(server)
    body = b'{"org_id": 0}'
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/decide", "/admin/rollback", f"/operations/decisions/{pending['decision_id']}/execute"):
        response = server.client.post(path, content=body if content_type else b"", headers={CALLER: "bob", **headers})
        assert error_of(response) == (415, "unsupported_media_type"), (path, response.text)
        assert "Content-Type: application/json" in response.json()["error"]["message"]
    assert logged(server) == before
    assert pending["decision_id"] in pending_ids(server)
    assert server.client.get("/ready").json()["version"] == version


def test_json_with_a_charset_is_json(server: Server) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = server.client.post("/decide", content=json.dumps(ops_facts()).encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert error_of(server.client.post("/admin/rollback", headers=JSON)) == (409, "conflict")  # JSON, no body


# --- limits on unauthenticated requests -------------------------------------------------------


def test_a_flood_of_unknown_keys_is_limited_by_address_and_logged_once(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # a token every 100 s: nothing refills during the test
    server = start_server(
        RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0.01", OPSGATE_RATE_LIMIT_BURST="5", **keys_config(tmp_path)
    )
    statuses = [
        server.client.post("/decide", json=ops_facts(), headers={"Authorization": f"Bearer og_guess-{i}"}).status_code
        for i in range(40)
    ]
    assert statuses == [401] * 5 + [429] * 35
    assert error_of(server.client.post("/decide", json=ops_facts()))[0] == 429  # no key: the same address
    limited = server.client.get("/ui/login")  # and the login page, on the same bucket
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert server.client.post("/decide", json=ops_facts(), headers=as_("decide")).status_code == 200  # a real key
    log = server.log_text()
    assert log.count("401 unknown key from 127.0.0.1") == 1
    assert log.count("401 no key from 127.0.0.1") == 1
    assert TOKENS["decide"] not in log and "og_guess" not in log


def login_statuses(server: Server, count: int) -> list[int]:
    return [
        server.client.get("/ui/login", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(count)
    ]


def test_a_forwarded_address_does_not_escape_the_limit_of_the_login_page(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(
        RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0.01", OPSGATE_RATE_LIMIT_BURST="3", **keys_config(tmp_path)
    )
    assert login_statuses(server, 8) == [200] * 3 + [429] * 5


def test_a_forwarded_address_is_believed_from_a_configured_proxy(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(
        RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0.01", OPSGATE_RATE_LIMIT_BURST="3",
        OPSGATE_TRUSTED_PROXIES="127.0.0.1", **keys_config(tmp_path),
    )  # fmt: skip
    assert login_statuses(server, 8) == [200] * 8  # each client behind the proxy has its own bucket

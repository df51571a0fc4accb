"""Limits over HTTP on a real server: body size, per-caller rate, request timeout, JSON depth and
list length; and every class of error answered as JSON with its stable code."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REGO_DIR, RULES_DIR, signal_and_wait
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts

JSON = {"Content-Type": "application/json"}


def logged(server: Server) -> int:
    with sqlite3.connect(server.db) as connection:
        return int(connection.execute("SELECT count(*) FROM log_entries WHERE kind = 'decision'").fetchone()[0])


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


# --- body size -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/decide", "/decide/ops", "/decide/batch", "/decide/ops/batch", "/run", "/decisions/x/outcome"]
)
def test_a_body_over_one_mib_is_413_payload_too_large_on_every_route_that_reads_one(server: Server, path: str) -> None:
    before = logged(server)
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    error = assert_error(server.client.post(path, content=body, headers=JSON), 413, "payload_too_large")
    assert error["message"] == "Request Entity Too Large"
    assert logged(server) == before


# --- JSON depth and list length ------------------------------------------------------


def test_facts_nested_deeper_than_32_levels_are_422_json_too_deep_with_the_path(server: Server) -> None:
    before = logged(server)
    facts = {**ops_facts(), "extra": {"deep": nested(31)}}  # the facts, extra and 31 lists: 33 levels
    error = assert_error(server.decide(facts), 422, "json_too_deep")
    assert error["details"] == [{"path": "extra.deep" + "[0]" * 30, "reason": "nested deeper than 32 levels"}]
    assert logged(server) == before


def test_facts_nested_far_deeper_than_the_decoder_goes_are_422_not_500(server: Server) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    error = assert_error(server.client.post("/decide", content=body, headers=JSON), 422, "json_too_deep")
    assert error["details"] == [{"path": "$", "reason": "nested deeper than 32 levels"}]


def test_a_list_over_10000_items_in_facts_is_413_with_its_path(server: Server) -> None:
    facts = {**ops_facts(), "candidates": [0] * 10_001}
    error = assert_error(server.decide(facts), 413, "payload_too_large")
    assert error["details"] == [{"path": "candidates", "reason": "10001 items; at most 10000 in a list"}]


def test_a_too_deep_batch_item_is_its_own_error_and_the_others_are_decided(server: Server) -> None:
    items = [ops_facts(), {**ops_facts(), "extra": nested(40)}, ops_facts()]
    response = server.client.post("/decide/batch", json={"items": items})
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["decided"], body["errors"]) == (3, 2, 1)
    failed = body["results"][1]
    assert failed["error"]["code"] == "json_too_deep"
    assert failed["error"]["details"] == [
        {"path": "items[1].extra" + "[0]" * 31, "reason": "nested deeper than 32 levels"}
    ]
    assert [r["status"] for r in body["results"]] == ["success", "error", "success"]


def test_the_limits_are_configurable(start_server: Callable[..., Server]) -> None:
    server = start_server(RULES_DIR, REGO_DIR, OPSGATE_MAX_JSON_DEPTH="3", OPSGATE_MAX_LIST_LENGTH="2")
    error = assert_error(server.decide({**ops_facts(), "x": {"y": [[1]]}}), 422, "json_too_deep")
    assert error["details"] == [{"path": "x.y[0]", "reason": "nested deeper than 3 levels"}]
    facts = {**ops_facts(), "candidates": [
        {"id": f"w-{i}", "capacity": 1, "status": "available"} for i in range(3)
    ]}  # fmt: skip
    error = assert_error(server.decide(facts), 413, "payload_too_large")
    assert error["details"] == [{"path": "candidates", "reason": "3 items; at most 2 in a list"}]


# --- rate limit ---------------------------------------------------------------------


def test_a_caller_over_its_rate_gets_429_with_retry_after(start_server: Callable[..., Server]) -> None:
    server = start_server(RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0.5", OPSGATE_RATE_LIMIT_BURST="2")
    assert [server.decide(ops_facts()).status_code for _ in range(2)] == [200, 200]
    before = logged(server)
    limited = server.decide(ops_facts())
    error = assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert "retry after 2 s" in error["message"]
    assert logged(server) == before
    assert_error(server.client.get("/rulesets"), 429, "rate_limited")  # every route but the probes
    assert server.client.get("/health").status_code == 200
    assert server.client.get("/ready").status_code == 200
    assert server.client.get("/schema/openapi.json").status_code == 200


def test_each_caller_has_its_own_rate(start_server: Callable[..., Server]) -> None:
    # open development mode: the caller is the X-Opsgate-Caller header (with keys, the key's name)
    server = start_server(RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0.5", OPSGATE_RATE_LIMIT_BURST="1")
    alice, bob = {"X-Opsgate-Caller": "alice"}, {"X-Opsgate-Caller": "bob"}
    assert server.client.get("/rulesets", headers=alice).status_code == 200
    assert_error(server.client.get("/rulesets", headers=alice), 429, "rate_limited")
    assert server.client.get("/rulesets", headers=bob).status_code == 200


def test_a_rate_of_zero_turns_the_limit_off(start_server: Callable[..., Server]) -> None:
    server = start_server(RULES_DIR, REGO_DIR, OPSGATE_RATE_LIMIT="0", OPSGATE_RATE_LIMIT_BURST="1")
    assert {server.client.get("/rulesets").status_code for _ in range(20)} == {200}


# --- request timeout ----------------------------------------------------------------------


def test_a_request_over_the_timeout_is_503_request_timeout_and_not_logged(
    start_server: Callable[..., Server],
) -> None:
    # OPA stopped (SIGSTOP) with a long OPA timeout: the guardrail query hangs past the request timeout
    server = start_server(
        RULES_DIR, REGO_DIR, OPSGATE_REQUEST_TIMEOUT_S="0.5", OPSGATE_OPA_TIMEOUT_MS="5000",
        OPSGATE_OPA_BATCH_WINDOW_MS="0",
    )  # fmt: skip
    assert server.decide(ops_facts()).status_code == 200
    pid = server.client.get("/ready").json()["opa"]["pid"]
    before = logged(server)
    signal_and_wait(pid, signal.SIGSTOP)
    try:
        response = server.decide(ops_facts())
    finally:
        os.kill(pid, signal.SIGCONT)
    error = assert_error(response, 503, "request_timeout")
    assert error["message"] == "the request took longer than 0.5 s and was abandoned"
    assert logged(server) == before  # cancelled before its log append: no record, no half record
    assert server.decide(ops_facts()).status_code == 200


# --- every other class of error ---------------------------------------------------------


def test_an_unknown_route_is_404_not_found(server: Server) -> None:
    assert_error(server.client.get("/no/such/route"), 404, "not_found")


def test_a_wrong_method_is_405_method_not_allowed_with_allow(server: Server) -> None:
    response = server.client.get("/decide")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_an_empty_body_is_400_malformed_request(server: Server) -> None:
    error = assert_error(server.client.post("/decide", content=b"", headers=JSON), 400, "malformed_request")
    assert error["message"].startswith("malformed JSON")


def test_a_non_json_body_sent_as_json_is_400_malformed_request(server: Server) -> None:
    response = server.client.post("/decide", content=b"org_id=0", headers=JSON)
    assert_error(response, 400, "malformed_request")


def test_an_unknown_explain_value_is_400_naming_the_parameter(server: Server) -> None:
    error = assert_error(server.client.post("/decide?explain=yes", json=ops_facts()), 400, "malformed_request")
    assert [d["path"] for d in error["details"]] == ["explain"]


def test_an_unknown_decision_is_404_not_found(server: Server) -> None:
    assert_error(server.client.get("/decisions/00000000-0000-0000-0000-000000000000"), 404, "not_found")


def test_a_batch_without_items_is_422_invalid_request(server: Server) -> None:
    error = assert_error(server.client.post("/decide/batch", json={"things": []}), 422, "invalid_request")
    assert error["details"] == [{"path": "things", "reason": "unknown field"}]


def test_the_ui_answers_its_errors_as_an_html_page_without_a_trace(server: Server) -> None:
    response = server.client.get("/ui/decisions/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    missing = server.client.get("/ui/rulesets/diff")  # its a and b query parameters are required
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("text/html")
    assert "Traceback" not in missing.text

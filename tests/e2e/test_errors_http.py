"""Bad input gets a clear 4xx with a stable code, and is never logged as a decision."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import RULES_DIR
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts


def logged(server: Server) -> int:
    with sqlite3.connect(server.db) as connection:
        return int(connection.execute("SELECT count(*) FROM log_entries").fetchone()[0])


def test_malformed_json_is_400(server: Server) -> None:
    before = logged(server)
    response = server.client.post("/decide", content=b'{"org_id": 0,', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert logged(server) == before


@pytest.mark.parametrize(
    ("facts", "path", "reason"),
    [
        (
            {**ops_facts(), "process": {"type": "X", "sla": 3600, "attempts": -1}},
            "process.attempts",
            "Expected `int` >= 0",
        ),
        (
            {**ops_facts(), "resource": {"id": "w", "capacity": 1, "status": "asleep"}},
            "resource.status",
            "Invalid enum value 'asleep'",
        ),
        ({k: v for k, v in ops_facts().items() if k != "history"}, "history", "required field is missing"),
        ({**ops_facts(), "process": {"type": "X", "sla": 0, "attempts": 1}}, "process.sla", "Expected `int` >= 1"),
        ({**ops_facts(), "colour": "red"}, "colour", "unknown field"),
        (
            {**ops_facts(), "candidates": [{"id": "c", "capacity": "lots", "status": "available"}]},
            "candidates[0].capacity",
            "Expected `int`, got `str`",
        ),
    ],
)
def test_a_schema_violation_is_422_naming_the_field_and_the_reason(
    server: Server, facts: dict[str, object], path: str, reason: str
) -> None:
    response = server.decide(facts)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_facts"
    assert error["details"] == [{"path": path, "reason": reason}]


def test_an_unknown_ruleset_is_404(server: Server) -> None:
    response = server.decide(ops_facts(), "/decide/payroll")
    assert response.status_code == 404
    # the known names are the files in rules/: adding a decision type must not break this test
    known = ", ".join(sorted(path.stem for path in RULES_DIR.glob("*.yaml")))
    assert "ops" in known.split(", ")
    assert response.json()["error"] == {
        "code": "unknown_ruleset",
        "message": f"unknown ruleset 'payroll' (known: {known})",
        "details": [],
    }


def test_a_body_over_one_mib_is_413(server: Server) -> None:
    body = b'{"org_id": 0, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = server.client.post("/decide", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_json_array_body_is_422_not_500(server: Server) -> None:
    response = server.client.post("/decide", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"path": "$", "reason": "Expected `object`, got `array`"}]

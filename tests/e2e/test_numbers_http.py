"""A number durable_rules once refused (0.000001) decides over HTTP as its conditions say."""

from __future__ import annotations

from tests.e2e.server import Server

CANARY_REQUEST = (
    b'{"org_id":3,"deployment":"d","stage":25,"stage_minutes":40,"metrics":{"error_rate":0.000001,'
    b'"quality_score":0.82,"latency_p95_ms":1200,"consistency":0.95}}'
)


def test_a_tiny_error_rate_promotes_the_canary(server: Server) -> None:
    response = server.client.post(
        "/decide/canary", content=CANARY_REQUEST, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["decision"]["decision_type"] == "CANARY.PROMOTE", result
    assert [rule["id"] for rule in result["explanation"]["fired_rules"]] == ["promote"]
    assert result["explanation"]["error"] is None
    assert result["execution"]["status"] == "APPROVED"

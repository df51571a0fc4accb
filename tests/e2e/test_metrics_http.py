"""GET /metrics against a real server: counts written by hand for the decisions the test makes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import signal_and_wait
from tests.e2e.server import Server
from tests.e2e.test_batch_http import APPROVED, BAD, LOW_CONFIDENCE, MAX_ATTEMPTS, RETRY, batch
from tests.e2e.test_ops_decisions import result_of

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> Samples:
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def decided(decision_type: str, status: str) -> dict[str, str]:
    return {"ruleset": "ops", "decision_type": decision_type, "status": status}


def test_metrics_count_each_decision_denial_and_call(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs)
    for facts in [APPROVED, APPROVED, APPROVED, RETRY, LOW_CONFIDENCE, LOW_CONFIDENCE, MAX_ATTEMPTS]:
        result_of(server, facts)
    assert server.decide(BAD).status_code == 422  # refused before deciding: not counted
    assert batch(server, [APPROVED, LOW_CONFIDENCE, BAD]).json()["decided"] == 2

    samples = scrape(server)
    assert value(samples, "opsgate_decisions_total", **decided("OPS.DISPATCH", "APPROVED")) == 4
    assert value(samples, "opsgate_decisions_total", **decided("OPS.RETRY", "APPROVED")) == 1
    assert value(samples, "opsgate_decisions_total", **decided("OPS.ESCALATE", "ESCALATED")) == 4
    assert sum(v for (name, _), v in samples.items() if name == "opsgate_decisions_total") == 9
    denials = {labels: v for (name, labels), v in samples.items() if name == "opsgate_guardrail_denials_total"}
    assert denials == {frozenset({("policy", "ops.min_confidence"), ("id", "OPS-MIN-CONFIDENCE")}): 3}
    # 7 single calls and 1 batch call, each observed once end to end and per stage
    assert value(samples, "opsgate_decision_seconds_count") == 8
    for stage in ("validate", "rules", "guardrails", "log"):
        assert value(samples, "opsgate_decision_stage_seconds_count", stage=stage) == 8
    assert value(samples, "opsgate_log_append_seconds_count") == 8
    assert value(samples, "opsgate_decision_seconds_bucket", le="+Inf") == 8
    assert value(samples, "opsgate_opa_up") == 1
    assert value(samples, "opsgate_opa_restarts_total") == 0
    assert value(samples, "opsgate_opa_breaker_state", state="closed") == 1
    assert value(samples, "opsgate_opa_breaker_state", state="open") == 0
    assert value(samples, "opsgate_opa_breaker_state", state="half_open") == 0
    assert value(samples, "opsgate_opa_breaker_opened_total") == 0
    assert value(samples, "opsgate_pending_approvals") == 0


def test_a_dead_opa_opens_the_breaker_in_ready_metrics_and_explanations_and_a_probe_closes_it(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(
        *copied_dirs,
        OPSGATE_OPA_RESTART_BACKOFF_S="3.0",  # OPA stays dead while the breaker opens
        OPSGATE_OPA_BREAKER_FAILURES="3",
        OPSGATE_OPA_BREAKER_RECOVERY_S="2.0",
    )
    ready = server.client.get("/ready").json()["opa"]
    assert ready["breaker"] == {
        "state": "closed", "failures": 0, "opened": 0, "rejected": 0, "threshold": 3, "recovery_s": 2.0, "probes": 1,
    }  # fmt: skip
    assert result_of(server, APPROVED)["explanation"]["guardrails"]["breaker"] == "closed"
    signal_and_wait(ready["pid"], signal.SIGKILL)

    failed = [result_of(server, APPROVED)["explanation"]["guardrails"] for _ in range(3)]
    assert [(g["available"], g["breaker"]) for g in failed] == [(False, "closed")] * 3
    refused = result_of(server, APPROVED)
    assert refused["execution"]["status"] == "ESCALATED"
    assert refused["explanation"]["guardrails"]["breaker"] == "open"
    assert refused["explanation"]["guardrails"]["error"] == "OPA circuit breaker open: OPA not asked"
    assert server.client.get("/ready").json()["opa"]["breaker"]["state"] in ("open", "half_open")
    samples = scrape(server)
    assert value(samples, "opsgate_opa_breaker_opened_total") == 1
    assert value(samples, "opsgate_opa_breaker_rejected_total") >= 1

    deadline = time.monotonic() + 30  # a bounded wait: restart after 3 s, probes every 2 s
    while result_of(server, APPROVED)["execution"]["status"] != "APPROVED":
        assert time.monotonic() < deadline, "decisions did not resume"
        time.sleep(0.1)
    opa = server.client.get("/ready").json()["opa"]
    assert (opa["up"], opa["restarts"], opa["breaker"]["state"]) == (True, 1, "closed")
    samples = scrape(server)
    assert value(samples, "opsgate_opa_breaker_state", state="closed") == 1
    assert value(samples, "opsgate_opa_restarts_total") == 1
    assert value(samples, "opsgate_opa_up") == 1
    assert value(samples, "opsgate_decisions_total", **decided("OPS.DISPATCH", "APPROVED")) >= 2

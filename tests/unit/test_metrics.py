"""service/adapters/metrics.py: a registry per app, OPA's state read at scrape time, the pending approvals gauge."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from service.adapters.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = asyncio.run(metrics.render()).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def opa_status(state: str, **counts: Any) -> dict[str, Any]:
    return {
        "up": counts.get("up", True),
        "restarts": counts.get("restarts", 0),
        "unhealthy_kills": counts.get("unhealthy_kills", 0),
        "breaker": {"state": state, "opened": counts.get("opened", 0), "rejected": counts.get("rejected", 0)},
    }


def test_two_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = Metrics(), Metrics()
    first.set_pending(3)
    second.set_pending(7)
    first.decided([], {"decode": 1.0, "rules": 2.0, "guardrails": 3.0, "log": 4.0, "total": 10.0})
    assert samples(first)[("opsgate_pending_approvals", ())] == 3
    assert samples(second)[("opsgate_pending_approvals", ())] == 7
    assert samples(first)[("opsgate_decision_seconds_sum", ())] == 0.01
    assert samples(first)[("opsgate_decision_stage_seconds_sum", (("stage", "validate"),))] == 0.001
    assert samples(first)[("opsgate_log_append_seconds_sum", ())] == 0.004
    assert samples(second)[("opsgate_decision_seconds_count", ())] == 0


def test_opa_state_is_read_from_the_watched_status_at_each_scrape() -> None:
    metrics = Metrics()
    assert ("opsgate_opa_up", ()) not in samples(metrics)  # nothing watched yet: no OPA figures
    status = {"now": opa_status("closed")}
    metrics.watch_opa(lambda: status["now"])
    assert samples(metrics)[("opsgate_opa_breaker_state", (("state", "closed"),))] == 1
    status["now"] = opa_status("half_open", up=False, restarts=2, unhealthy_kills=1, opened=4, rejected=9)
    now = samples(metrics)
    assert [now[("opsgate_opa_breaker_state", (("state", s),))] for s in ("closed", "open", "half_open")] == [0, 0, 1]
    assert now[("opsgate_opa_up", ())] == 0
    assert now[("opsgate_opa_restarts_total", ())] == 2
    assert now[("opsgate_opa_unhealthy_kills_total", ())] == 1
    assert now[("opsgate_opa_breaker_opened_total", ())] == 4
    assert now[("opsgate_opa_breaker_rejected_total", ())] == 9


def test_a_scrape_hook_runs_before_each_scrape() -> None:
    metrics = Metrics()
    counted = iter([5, 2])

    async def count_pending() -> None:
        metrics.set_pending(next(counted))

    metrics.on_scrape(count_pending)
    assert samples(metrics)[("opsgate_pending_approvals", ())] == 5
    assert samples(metrics)[("opsgate_pending_approvals", ())] == 2

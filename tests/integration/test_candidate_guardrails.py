"""A candidate opened the way replay, shadow and ``opsgate test`` open one (service/bootstrap.py) runs
its own OPA child with the settings' circuit breaker, health policy and batching."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from service import bootstrap
from service.adapters.opa.guardrails import Guardrails, HealthPolicy
from service.settings import Settings
from tests.conftest import copy_ops_only


def test_an_opened_candidate_runs_its_own_opa_with_the_settings_breaker_health_and_batching(
    tmp_path: Path, opa_bin: str
) -> None:
    rules, rego = copy_ops_only(tmp_path)
    settings = Settings(
        opa_bin=opa_bin,
        opa_url="http://127.0.0.1:9",  # the served guardrails' external OPA: a candidate never uses it
        opa_batch_window_ms=1.5,
        opa_breaker_failures=9,
        opa_breaker_recovery_s=4.0,
        opa_breaker_probes=3,
        opa_health_interval_s=0.5,
        opa_unhealthy_restart_s=6.0,
    )

    async def opened() -> tuple[dict[str, Any], tuple[int, float, int], HealthPolicy]:
        candidate = await bootstrap.candidates(settings).open(rules, rego)
        try:
            guardrails = candidate.guardrails
            assert isinstance(guardrails, Guardrails)
            breaker = guardrails.breaker
            return guardrails.status(), (breaker.threshold, breaker.recovery_s, breaker.probes), guardrails.health
        finally:
            await candidate.close()

    status, breaker, health = asyncio.run(opened())
    assert (status["mode"], status["up"]) == ("child", True)
    assert status["micro_batching"]["window_ms"] == 1.5
    assert status["breaker"]["state"] == "closed"
    assert breaker == (9, 4.0, 3)
    assert health == HealthPolicy(interval_s=0.5, restart_after_s=6.0)

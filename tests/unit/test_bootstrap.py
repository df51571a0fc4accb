"""service/bootstrap.py builds every guardrails client from the settings: the served version's and
each candidate's get the same breaker, health policy and batching; a candidate always its own OPA child."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from service import bootstrap
from service.adapters.opa.guardrails import Guardrails, HealthPolicy
from service.settings import Settings
from service.usecases.candidate import CANDIDATE_OPA_TIMEOUT_S

EXTERNAL_OPA = "http://127.0.0.1:9"  # never asked: nothing here starts or queries an OPA


@pytest.fixture
def settings() -> Settings:
    return Settings(
        opa_bin="/nowhere/opa",
        opa_url=EXTERNAL_OPA,
        opa_timeout_ms=250.0,
        opa_restart_backoff_s=0.7,
        opa_batch_window_ms=2.0,
        opa_breaker_failures=7,
        opa_breaker_recovery_s=3.5,
        opa_breaker_probes=2,
        opa_health_interval_s=0.25,
        opa_unhealthy_restart_s=4.0,
    )


@pytest.fixture
def closing() -> Iterator[list[Guardrails]]:
    built: list[Guardrails] = []
    yield built
    for guardrails in built:
        asyncio.run(guardrails.close())  # removes a child's runtime directory; no child was started


def assert_configured_as(guardrails: Guardrails, settings: Settings) -> None:
    breaker = guardrails.breaker
    assert (breaker.threshold, breaker.recovery_s, breaker.probes) == (7, 3.5, 2)
    assert guardrails.health == HealthPolicy(interval_s=0.25, restart_after_s=4.0)
    assert guardrails.stats["window_ms"] == settings.opa_batch_window_ms


def test_the_served_guardrails_have_the_settings_breaker_health_batching_timeout_and_external_opa(
    settings: Settings, closing: list[Guardrails]
) -> None:
    guardrails = bootstrap.guardrails(settings)
    closing.append(guardrails)
    assert_configured_as(guardrails, settings)
    assert guardrails.timeout == 0.25
    assert guardrails.process is None
    assert guardrails.client.address == EXTERNAL_OPA


def test_a_candidates_guardrails_have_the_settings_breaker_health_and_batching_and_an_own_opa_child(
    settings: Settings, closing: list[Guardrails]
) -> None:
    candidates = bootstrap.candidates(settings)
    guardrails = candidates.guardrails(candidates.timeout)
    assert isinstance(guardrails, Guardrails)
    closing.append(guardrails)
    assert_configured_as(guardrails, settings)
    assert guardrails.timeout == CANDIDATE_OPA_TIMEOUT_S  # off the response path: patient
    assert guardrails.process is not None  # never the external OPA, which holds the served policies
    assert guardrails.process.opa_bin == "/nowhere/opa"


def test_opsgate_tests_candidates_wait_as_long_as_asked(settings: Settings, closing: list[Guardrails]) -> None:
    candidates = bootstrap.candidates(settings, timeout=30.0)
    guardrails = candidates.guardrails(candidates.timeout)
    assert isinstance(guardrails, Guardrails)
    closing.append(guardrails)
    assert guardrails.timeout == 30.0
    assert_configured_as(guardrails, settings)

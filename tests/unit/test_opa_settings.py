"""The OPA breaker and health settings: defaults, environment, flags over environment, bad values refused."""

from __future__ import annotations

import pytest

from service.cli.main import _settings, build_parser
from service.errors import OpsgateError
from service.settings import from_env


def test_the_breaker_opens_after_5_failures_for_2_s_with_1_probe_and_health_is_checked_every_second() -> None:
    settings = from_env({})
    assert (settings.opa_breaker_failures, settings.opa_breaker_recovery_s, settings.opa_breaker_probes) == (5, 2.0, 1)
    assert (settings.opa_health_interval_s, settings.opa_unhealthy_restart_s, settings.opa_timeout_ms) == (
        1.0, 10.0, 100.0,
    )  # fmt: skip


def test_the_environment_sets_them() -> None:
    settings = from_env(
        {
            "OPSGATE_OPA_BREAKER_FAILURES": "3",
            "OPSGATE_OPA_BREAKER_RECOVERY_S": "0.5",
            "OPSGATE_OPA_BREAKER_PROBES": "2",
            "OPSGATE_OPA_HEALTH_INTERVAL_S": "0.25",
            "OPSGATE_OPA_UNHEALTHY_RESTART_S": "30",
        }
    )
    assert (settings.opa_breaker_failures, settings.opa_breaker_recovery_s, settings.opa_breaker_probes) == (3, 0.5, 2)
    assert (settings.opa_health_interval_s, settings.opa_unhealthy_restart_s) == (0.25, 30.0)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OPSGATE_OPA_BREAKER_FAILURES", "0", "must be a whole number, 1 or more"),
        ("OPSGATE_OPA_BREAKER_PROBES", "1.5", "invalid literal for int() with base 10: '1.5'"),
        ("OPSGATE_OPA_BREAKER_RECOVERY_S", "0", "must be greater than 0"),
        ("OPSGATE_OPA_UNHEALTHY_RESTART_S", "-1", "must be greater than 0"),
        ("OPSGATE_OPA_TIMEOUT_MS", "0", "must be greater than 0"),  # as --opa-timeout-ms refuses it
    ],
)
def test_a_bad_value_is_refused_by_name(variable: str, value: str, reason: str) -> None:
    with pytest.raises(OpsgateError) as caught:
        from_env({variable: value})
    assert caught.value.message == f"{variable}={value!r} is invalid: {reason}"


def test_serve_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGATE_OPA_BREAKER_FAILURES", "9")
    args = build_parser().parse_args(
        ["serve", "--opa-breaker-failures", "2", "--opa-breaker-recovery-s", "1.5", "--opa-breaker-probes", "3",
         "--opa-timeout-ms", "250", "--opa-health-interval-s", "0.5", "--opa-unhealthy-restart-s", "4"]
    )  # fmt: skip
    settings = _settings(args)
    assert (settings.opa_breaker_failures, settings.opa_breaker_recovery_s, settings.opa_breaker_probes) == (2, 1.5, 3)
    assert (settings.opa_timeout_ms, settings.opa_health_interval_s, settings.opa_unhealthy_restart_s) == (
        250.0, 0.5, 4.0,
    )  # fmt: skip

"""The circuit breaker and the health-checking supervisor against the real OPA child."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from service.adapters.opa.breaker import CircuitBreaker
from service.adapters.opa.guardrails import BREAKER_OPEN, Guardrails, HealthPolicy
from service.authoring.policies import read_policies
from tests.conftest import OPA_TIMEOUT_MS, REGO_DIR, signal_and_wait
from tests.integration.test_guardrails_batching import item


class Clock:
    """The breaker's clock, moved by hand: its recovery time passes when the test says so, not while a
    loaded machine runs the lines between two assertions."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def eventually(condition: Callable[[], bool], within: float) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds pass (a bounded wait)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def run(scenario: Callable[[Guardrails], Awaitable[None]], **options: object) -> None:
    async def main() -> None:
        guardrails = Guardrails(**options)  # type: ignore[arg-type]
        await guardrails.start(read_policies(REGO_DIR), "rev-1")
        try:
            await scenario(guardrails)
        finally:
            await guardrails.close()

    asyncio.run(main())


def test_timeouts_of_a_stopped_opa_open_the_breaker_and_a_probe_closes_it_after_sigcont(opa_bin: str) -> None:
    clock = Clock()

    async def scenario(guardrails: Guardrails) -> None:
        assert guardrails.process is not None and guardrails.process.pid is not None
        pid = guardrails.process.pid
        assert (await guardrails.check(item(0.9))).breaker == "closed"
        signal_and_wait(pid, signal.SIGSTOP)
        try:
            timed_out = [await guardrails.check(item(0.9)) for _ in range(3)]
            assert [v.error for v in timed_out] == ["OPA did not answer within 1000 ms"] * 3
            assert [v.breaker for v in timed_out] == ["closed"] * 3
            assert guardrails.breaker.state == "open"
            refused = await guardrails.check(item(0.9))
            assert (refused.available, refused.allow, refused.error, refused.breaker) == (
                False, False, BREAKER_OPEN, "open",
            )  # fmt: skip
            many = await guardrails.check_many([item(0.9), item(0.5)])
            assert [(v.available, v.error) for v in many] == [(False, BREAKER_OPEN)] * 2
        finally:
            os.kill(pid, signal.SIGCONT)
        clock.now += 0.5
        assert guardrails.breaker.state == "open"
        clock.now += 0.5  # the recovery time has passed
        assert guardrails.breaker.state == "half_open"
        probe = await guardrails.check(item(0.9))
        assert (probe.available, probe.allow, probe.breaker) == (True, True, "half_open")
        assert guardrails.breaker.state == "closed"
        after = await guardrails.check(item(0.5))
        assert (after.available, after.allow, after.breaker) == (True, False, "closed")
        stats = guardrails.breaker.stats()
        assert (stats.opened, stats.rejected) == (1, 2)
        assert guardrails.process.restarts == 0 and guardrails.process.pid == pid

    run(
        scenario,
        opa_bin=opa_bin,
        timeout=1.0,  # each of the three timed-out queries waits this long; a healthy OPA answers well within it
        batch_window=0.0,
        breaker=CircuitBreaker(failures=3, recovery_s=1.0, clock=clock),
        health=HealthPolicy(interval_s=1.0, restart_after_s=60.0),
    )


def test_a_failed_probe_opens_the_breaker_again_while_opa_is_dead(opa_bin: str) -> None:
    clock = Clock()

    async def scenario(guardrails: Guardrails) -> None:
        assert guardrails.process is not None and guardrails.process.pid is not None
        os.kill(guardrails.process.pid, signal.SIGKILL)
        assert await eventually(lambda: not guardrails.up, within=10)
        failed = [await guardrails.check(item(0.9)) for _ in range(2)]
        assert all(v.error and v.error.startswith("cannot connect to OPA") for v in failed)
        assert guardrails.breaker.state == "open"
        clock.now += 0.5  # the recovery time has passed
        assert guardrails.breaker.state == "half_open"
        probe = await guardrails.check(item(0.9))
        assert probe.breaker == "half_open" and probe.available is False
        assert guardrails.breaker.state == "open"
        assert guardrails.breaker.stats().opened == 2

    run(
        scenario,
        opa_bin=opa_bin,
        timeout=0.5,
        batch_window=0.0,
        restart_backoff=60.0,  # stays dead for the whole test
        breaker=CircuitBreaker(failures=2, recovery_s=0.5, clock=clock),
    )


def test_a_child_that_stays_unhealthy_is_killed_and_restarted_with_its_bundle(opa_bin: str) -> None:
    async def scenario(guardrails: Guardrails) -> None:
        process = guardrails.process
        assert process is not None and process.pid is not None and guardrails.up
        pid = process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            assert await eventually(lambda: not guardrails.up, within=10)
            assert process.restarts == 0  # unhealthy, but not for long enough yet
            assert await eventually(lambda: process.restarts == 1 and guardrails.up, within=30)
        finally:
            if process.running and process.pid == pid:  # not killed by the supervisor: wake it
                os.kill(pid, signal.SIGCONT)
        assert process.unhealthy_kills == 1
        assert process.pid != pid
        verdict = await guardrails.check(item(0.5))
        assert verdict.available is True and verdict.revision == "rev-1"
        assert [v.message for v in verdict.violations] == ["confidence 0.5 is below the minimum 0.6"]

    run(
        scenario,
        opa_bin=opa_bin,
        timeout=OPA_TIMEOUT_MS / 1000,  # the restarted child's first query, on a machine perhaps loaded
        batch_window=0.0,
        health=HealthPolicy(interval_s=0.2, restart_after_s=1.5),
    )


def test_a_restart_that_cannot_even_run_opa_is_retried_until_it_can(opa_bin: str, tmp_path: Path) -> None:
    # e.g. the binary replaced during an upgrade: Popen raises OSError; the supervisor must live on
    async def scenario(guardrails: Guardrails) -> None:
        process = guardrails.process
        assert process is not None and process.pid is not None
        process.opa_bin = str(tmp_path / "no-such-opa")
        os.kill(process.pid, signal.SIGKILL)
        assert await eventually(lambda: process.restarts >= 2, within=10)  # failed restarts, retried
        assert not guardrails.up
        process.opa_bin = opa_bin
        assert await eventually(lambda: guardrails.up, within=15)
        verdict = await guardrails.check(item(0.5))
        assert verdict.available is True and verdict.revision == "rev-1"

    run(scenario, opa_bin=opa_bin, timeout=OPA_TIMEOUT_MS / 1000, batch_window=0.0, restart_backoff=0.05)


def test_a_restarted_child_is_probed_at_once_without_waiting_out_the_breakers_recovery_time(opa_bin: str) -> None:
    clock = Clock()  # never moved: the recovery time never passes

    async def scenario(guardrails: Guardrails) -> None:
        process = guardrails.process
        assert process is not None and process.pid is not None
        signal_and_wait(process.pid, signal.SIGKILL)
        failed = await guardrails.check(item(0.9))  # well within the restart backoff
        assert failed.available is False
        assert guardrails.breaker.state == "open"
        assert await eventually(lambda: process.restarts == 1 and guardrails.up, within=30)
        assert guardrails.breaker.state == "half_open"
        probe = await guardrails.check(item(0.9))
        assert (probe.available, probe.allow, probe.breaker) == (True, True, "half_open")
        assert guardrails.breaker.state == "closed"
        assert guardrails.breaker.stats().opened == 1

    run(
        scenario,
        opa_bin=opa_bin,
        timeout=OPA_TIMEOUT_MS / 1000,  # the restarted child's first query, on a machine perhaps loaded
        batch_window=0.0,
        restart_backoff=2.0,
        breaker=CircuitBreaker(failures=1, recovery_s=60.0, clock=clock),
    )

"""The circuit breaker's state machine, on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from service.adapters.opa.breaker import CircuitBreaker, Permit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.admit()
        assert permit is not None
        breaker.failed(permit)


def admitted(breaker: CircuitBreaker) -> Permit:
    permit = breaker.admit()
    assert permit is not None
    return permit


def test_five_consecutive_failures_open_it_and_calls_are_then_refused() -> None:
    breaker = CircuitBreaker(clock=Clock())
    fail(breaker, 4)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.admit() is None
    assert breaker.admit() is None
    stats = breaker.stats()
    assert (stats.state, stats.opened, stats.rejected, stats.failures) == ("open", 1, 2, 0)


def test_a_success_in_between_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(failures=3, clock=Clock())
    fail(breaker, 2)
    breaker.succeeded(admitted(breaker))
    fail(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.stats().failures == 2
    fail(breaker, 1)
    assert breaker.state == "open"


def test_after_the_recovery_time_one_probe_goes_through_and_its_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, recovery_s=2.0, clock=clock)
    fail(breaker, 1)
    clock.now += 1.999
    assert breaker.state == "open"
    clock.now += 0.001
    assert breaker.state == "half_open"
    probe = admitted(breaker)
    assert probe.state == "half_open"
    assert breaker.admit() is None  # one probe at a time by default
    breaker.succeeded(probe)
    assert breaker.state == "closed"
    assert admitted(breaker).state == "closed"
    assert breaker.stats().opened == 1


def test_a_failed_probe_opens_it_again_for_a_full_recovery_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, recovery_s=2.0, probes=2, clock=clock)
    fail(breaker, 2)
    clock.now += 2.5
    first, second = admitted(breaker), admitted(breaker)
    assert breaker.admit() is None  # two probes allowed, both out
    breaker.failed(first)
    assert breaker.state == "open"
    breaker.succeeded(second)  # answered after the re-opening: it speaks for a state that is gone
    assert breaker.state == "open"
    clock.now += 1.9
    assert breaker.state == "open"
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.stats().opened == 2


def test_a_slow_call_admitted_while_closed_does_not_close_an_open_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, clock=clock)
    slow = admitted(breaker)
    fail(breaker, 2)
    breaker.succeeded(slow)
    assert breaker.state == "open"
    breaker.failed(slow)
    assert breaker.stats().opened == 1


def test_a_cancelled_probe_frees_its_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, recovery_s=1.0, clock=clock)
    fail(breaker, 1)
    clock.now += 1.0
    probe = admitted(breaker)
    assert breaker.admit() is None
    breaker.released(probe)
    assert admitted(breaker).state == "half_open"


@pytest.mark.parametrize("failures, recovery_s, probes", [(0, 2.0, 1), (5, 0.0, 1), (5, 2.0, 0)])
def test_settings_out_of_range_are_refused(failures: int, recovery_s: float, probes: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker(failures, recovery_s, probes)


def test_try_now_lets_the_probes_of_an_open_breaker_through_at_once_and_changes_nothing_else() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, recovery_s=2.0, clock=clock)
    breaker.try_now()
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    breaker.try_now()  # OPA answers again: no need to wait out the recovery time
    assert breaker.state == "half_open"
    probe = admitted(breaker)
    breaker.try_now()  # already probing: the probe out keeps its slot
    assert breaker.admit() is None
    breaker.failed(probe)
    assert breaker.state == "open"  # a failed probe still opens it for a whole recovery time
    clock.now += 1.9
    assert breaker.state == "open"
    assert breaker.stats().opened == 2

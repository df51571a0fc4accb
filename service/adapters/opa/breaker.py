"""A circuit breaker for the OPA queries: a pure state machine over an injectable clock.

closed: every call goes through; ``failures`` consecutive failures (timeouts
included) open it.  open: no call goes through, the caller answers at once
(guardrails: unavailable, so the decision fails closed).  After ``recovery_s``
it is half_open: at most ``probes`` calls go through at a time; the first of
them to succeed closes it, the first to fail opens it again for ``recovery_s``.
``try_now()`` (OPA known to answer again: a restarted child passed its health
check) turns an open breaker half_open at once instead of at the end of ``recovery_s``.

A call asks ``admit()`` for a permit and hands it back to ``succeeded`` or
``failed``.  A permit remembers the state's generation, so a call admitted
before a change of state (e.g. a slow call started while closed that returns
after the breaker opened) cannot close or re-open the breaker it no longer
speaks for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

DEFAULT_FAILURES = 5
DEFAULT_RECOVERY_S = 2.0
DEFAULT_PROBES = 1


class Permit(msgspec.Struct, frozen=True):
    """One admitted call: the state it was admitted in and that state's generation."""

    state: str
    generation: int


class BreakerStats(msgspec.Struct, frozen=True):
    """What /ready and /metrics show."""

    state: str
    failures: int  # consecutive failures counted towards opening
    opened: int  # times it opened (re-openings after a failed probe included)
    rejected: int  # calls answered without being let through
    threshold: int
    recovery_s: float
    probes: int


class CircuitBreaker:
    def __init__(
        self,
        failures: int = DEFAULT_FAILURES,
        recovery_s: float = DEFAULT_RECOVERY_S,
        probes: int = DEFAULT_PROBES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or probes < 1 or recovery_s <= 0:
            raise ValueError("failures and probes must be at least 1, recovery_s greater than 0")
        self.threshold = failures
        self.recovery_s = recovery_s
        self.probes = probes
        self._clock = clock
        self._state = CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probing = 0  # probes let through and not answered yet
        self.opened = 0
        self.rejected = 0

    @property
    def state(self) -> str:
        """closed | open | half_open (open turns half_open once the recovery time has passed)."""
        if self._state == OPEN and self._clock() - self._opened_at >= self.recovery_s:
            self._enter(HALF_OPEN)
        return self._state

    def admit(self) -> Permit | None:
        """A permit to make the call, or None: answer without calling."""
        state = self.state
        if state == OPEN or (state == HALF_OPEN and self._probing >= self.probes):
            self.rejected += 1
            return None
        if state == HALF_OPEN:
            self._probing += 1
        return Permit(state, self._generation)

    def succeeded(self, permit: Permit) -> None:
        if permit.generation != self._generation:
            return
        if self._state == HALF_OPEN:
            self._enter(CLOSED)
        self._failures = 0

    def failed(self, permit: Permit) -> None:
        if permit.generation != self._generation:
            return
        if self._state == HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._open()

    def released(self, permit: Permit) -> None:
        """The call ended with no answer either way (cancelled): its probe slot is free again."""
        if permit.generation == self._generation and self._state == HALF_OPEN:
            self._probing = max(0, self._probing - 1)

    def try_now(self) -> None:
        """OPA answers its health check again: an open breaker lets its probes through now rather than
        after the rest of ``recovery_s`` (a probe that fails opens it again for a whole ``recovery_s``)."""
        if self.state == OPEN:
            self._enter(HALF_OPEN)

    def stats(self) -> BreakerStats:
        return BreakerStats(
            self.state, self._failures, self.opened, self.rejected, self.threshold, self.recovery_s, self.probes
        )

    def _open(self) -> None:
        self._enter(OPEN)
        self._opened_at = self._clock()
        self.opened += 1

    def _enter(self, state: str) -> None:
        self._state = state
        self._generation += 1
        self._failures = 0
        self._probing = 0

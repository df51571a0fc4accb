"""Limits on what one caller may ask: a per-caller rate (token buckets), its log lines, and the shape of JSON facts.

Pure: no HTTP, no settings, the clock is passed in.  ``service/http/limits.py`` applies them to requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import msgspec

from service.errors import PayloadTooLarge, Problem, TooDeep


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """One token bucket per key: ``rate`` tokens a second, holding at most ``burst``.

    ``take(key)`` is O(1); it answers 0 when the request may go on, else the whole seconds
    (at least 1) after which one token will be there again.  A rate of 0 turns limiting off.
    Idle buckets are full, the same as absent, so they are dropped when the table grows past
    ``max_keys`` (callers that name themselves cannot grow memory without bound)."""

    def __init__(
        self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:  # fmt: skip
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.clock = clock
        self.max_keys = max_keys
        self._prune_at = max_keys
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> int:
        if self.rate <= 0:
            return 0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate  # seconds for an empty bucket to fill
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < full_after}
        # amortised O(1): the next prune waits until the table has grown by as much again
        self._prune_at = max(self.max_keys, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


class LogThrottle:
    """At most one log line per key per ``interval_s``, counting the lines it held back.

    ``take(key)`` answers None when a line was written for ``key`` less than ``interval_s`` ago (the
    line is suppressed and counted), else how many were suppressed since the last one written (0
    the first time).  Keys whose interval is over are dropped when the table grows past ``max_keys``."""

    def __init__(
        self, interval_s: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.max_keys = max_keys
        self._prune_at = max_keys
        self._lines: dict[str, list[float]] = {}  # key -> [written at, suppressed since]

    def take(self, key: str) -> int | None:
        now = self.clock()
        line = self._lines.get(key)
        if line is not None and now - line[0] < self.interval_s:
            line[1] += 1
            return None
        if line is None and len(self._lines) >= self._prune_at:
            self._lines = {k: v for k, v in self._lines.items() if now - v[0] < self.interval_s}
            self._prune_at = max(self.max_keys, 2 * len(self._lines))  # amortised O(1), as RateLimiter
        self._lines[key] = [now, 0]
        return 0 if line is None else int(line[1])


class JsonLimits(msgspec.Struct, frozen=True):
    """How deep a JSON document may nest and how long any of its lists may be."""

    max_depth: int = 32
    max_list_length: int = 10_000

    def check(self, body: bytes | memoryview, prefix: str = "") -> None:
        """Raise TooDeep (422) or PayloadTooLarge (413) naming the path, before any other work.

        Counting brackets and commas (C speed) proves most bodies within bounds without decoding;
        only the others are decoded and walked.  Malformed JSON is left to the real decoder."""
        raw = bytes(body)
        deep = raw.count(b"[") + raw.count(b"{") > self.max_depth
        long = raw.count(b",") + 1 > self.max_list_length
        if not (deep or long):
            return
        try:
            value = msgspec.json.decode(raw)
        except RecursionError:
            raise self._too_deep(prefix or "$") from None
        except msgspec.DecodeError:
            return
        self._walk(value, prefix)

    def _walk(self, value: Any, prefix: str) -> None:
        stack: list[tuple[Any, str, int]] = [(value, prefix, 1)]
        while stack:
            current, path, depth = stack.pop()
            if depth > self.max_depth:
                raise self._too_deep(path or "$")
            if isinstance(current, dict):
                stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in current.items()
                             if isinstance(v, (dict, list)))  # fmt: skip
            elif isinstance(current, list):
                if len(current) > self.max_list_length:
                    reason = f"{len(current)} items; at most {self.max_list_length} in a list"
                    raise PayloadTooLarge(f"list too long: {path or '$'}: {reason}", [Problem(reason, path or "$")])
                stack.extend(
                    (v, f"{path}[{i}]", depth + 1) for i, v in enumerate(current) if isinstance(v, (dict, list))
                )

    def _too_deep(self, path: str) -> TooDeep:
        reason = f"nested deeper than {self.max_depth} levels"
        return TooDeep(f"JSON too deep: {path}: {reason}", [Problem(reason, path)])

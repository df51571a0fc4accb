"""Building a decision's context: the fact groups a request left out, fetched from the ruleset's
providers (service/domain/context.py) concurrently, within one budget per request, cached per URL.

Fail closed: a provider that fails, is too slow or answers data its group's schema refuses gives
no facts at all, only the reason (``Filled.error``); the decision service escalates on it.  Facts
sent win: a group the request holds is never fetched.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from service.domain.context import MISSING_CONTEXT, ContextSource, MissingPlaceholder, Provider, render_url
from service.domain.record import now
from service.domain.ruleset import Ruleset
from service.errors import ContextUnavailable, InvalidFacts
from service.ports.context import ContextFetcher

MAX_CACHED = 10_000  # URLs kept at most; past it the expired ones go, then all


class Filled(msgspec.Struct, frozen=True):
    """The facts with the fetched groups in, where each came from, or why they could not be had."""

    facts: dict[str, Any]
    sources: dict[str, ContextSource] = {}
    error: str | None = None


class _Cached(msgspec.Struct, frozen=True):
    value: Any
    fetched: float  # time.monotonic() when fetched
    fetched_at: str


class ContextBuilder:
    """One per process: the fetcher (one HTTP client), the per-request budget and the cache."""

    def __init__(self, fetcher: ContextFetcher | None, budget_ms: float) -> None:
        self.fetcher = fetcher
        self.budget_s = budget_ms / 1000
        self._cache: dict[str, tuple[float, _Cached]] = {}  # url -> (expires, value)
        self._asking: dict[str, asyncio.Task[_Cached]] = {}  # url -> the fetch under way, for cached providers

    async def build_context(self, ruleset: Ruleset, facts: dict[str, Any]) -> Filled:
        """``facts`` with each group a provider declares and the request left out (or sent as null)
        fetched; the reasons of those that failed instead, when any did."""
        missing = [p for group, p in ruleset.context.items() if facts.get(group) is None]
        if not missing:
            return Filled(facts)
        deadline = time.monotonic() + self.budget_s
        got = await asyncio.gather(*(self._fill(p, facts, deadline) for p in missing), return_exceptions=True)
        failed = [str(error) for error in got if isinstance(error, ContextUnavailable)]
        if failed:
            return Filled(facts, error=f"{MISSING_CONTEXT}: {'; '.join(failed)}")
        for unexpected in got:
            if isinstance(unexpected, BaseException):
                raise unexpected
        fetched = [item for item in got if not isinstance(item, BaseException)]
        filled = {**facts, **{group: value for group, value, _ in fetched}}
        return Filled(filled, {group: source for group, _, source in fetched})

    async def build_many(self, ruleset: Ruleset, items: list[dict[str, Any]]) -> list[Filled]:
        """``build_context`` for each item of a batch, all at once."""
        if not ruleset.context:  # most rulesets: nothing to schedule
            return [Filled(facts) for facts in items]
        return list(await asyncio.gather(*(self.build_context(ruleset, facts) for facts in items)))

    async def close(self) -> None:
        for asking in list(self._asking.values()):
            asking.cancel()
        if self.fetcher is not None:
            await self.fetcher.close()

    async def _fill(self, provider: Provider, facts: dict[str, Any], deadline: float) -> tuple[str, Any, ContextSource]:
        group = provider.group
        try:
            url = render_url(provider, facts)
        except MissingPlaceholder as error:
            raise ContextUnavailable(f"{group}: {error}") from None
        entry, cached = await self._get(provider, url, deadline)
        age_ms = round((time.monotonic() - entry.fetched) * 1000, 3) if cached else 0.0
        return group, entry.value, ContextSource(url, age_ms, entry.fetched_at)

    async def _get(self, provider: Provider, url: str, deadline: float) -> tuple[_Cached, bool]:
        """The value at ``url`` and whether it came from the cache."""
        cached = self._cache.get(url)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1], True
        fetcher = self.fetcher
        if fetcher is None:
            raise ContextUnavailable(f"{provider.group} from {url}: no context client in this process")
        timeout = min(provider.timeout_ms / 1000, deadline - time.monotonic())
        if timeout <= 0:
            raise ContextUnavailable(f"{provider.group} from {url}: the request's context budget is spent")
        if provider.cache_s <= 0:
            return await self._fetch(fetcher, provider, url, timeout), False
        # a cached provider is asked once for concurrent decisions (a batch, a burst): they share the fetch
        asking = self._asking.get(url)
        if asking is None:
            asking = self._asking[url] = asyncio.ensure_future(self._fetch(fetcher, provider, url, timeout))
            asking.add_done_callback(lambda done: self._done(url, done))
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(asking), False
        except TimeoutError:
            raise ContextUnavailable(f"{provider.group} from {url}: timed out after {timeout * 1000:g} ms") from None

    def _done(self, url: str, done: asyncio.Task[_Cached]) -> None:
        self._asking.pop(url, None)
        if not done.cancelled():
            done.exception()  # each waiter got it; none left is no error of the loop's

    async def _fetch(self, fetcher: ContextFetcher, provider: Provider, url: str, timeout: float) -> _Cached:
        entry = await _fetch(fetcher, provider, url, timeout)
        if provider.cache_s > 0:
            self._keep(url, entry, entry.fetched + provider.cache_s)
        return entry

    def _keep(self, url: str, entry: _Cached, expires: float) -> None:
        if len(self._cache) >= MAX_CACHED:
            moment = time.monotonic()
            self._cache = {key: kept for key, kept in self._cache.items() if kept[0] > moment}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[url] = (expires, entry)


async def _fetch(fetcher: ContextFetcher, provider: Provider, url: str, timeout: float) -> _Cached:
    """``url``'s JSON within ``timeout``, checked by ``provider``'s group schema."""
    try:
        async with asyncio.timeout(timeout):  # the whole call, not each of httpx's phases
            value = await fetcher.get_json(url, timeout)
    except TimeoutError:
        raise ContextUnavailable(f"{provider.group} from {url}: timed out after {timeout * 1000:g} ms") from None
    except ContextUnavailable as error:
        raise ContextUnavailable(f"{provider.group} from {url}: {error.message}") from None
    try:  # checked before it is cached: data the schema refuses is asked for again next time
        checked = provider.decoder.convert({provider.group: value})[provider.group]
    except InvalidFacts as error:
        raise ContextUnavailable(f"{provider.group} from {url}: invalid data: {error.message}") from None
    return _Cached(checked, time.monotonic(), now())

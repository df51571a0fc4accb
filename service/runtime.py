"""The composition root: wires the real engine, OPA and decision log from Settings, and
swaps the served version (reload, rollback, activate) without failing a request.

A version is served by a ``RunningVersion`` (service/usecases/versions.py).  A request takes
the current one once and finishes on it; a swap replaces the reference, and the
old version's OPA is stopped once its last request is done.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from service.adapters.gitinfo import last_commit
from service.adapters.metrics import Metrics
from service.adapters.opa.breaker import CircuitBreaker
from service.adapters.opa.guardrails import Guardrails, HealthPolicy
from service.adapters.opa.tools import require_valid_policies
from service.adapters.store import open_log
from service.authoring.catalog import Catalog, load_catalog
from service.domain.limits import JsonLimits
from service.errors import Conflict
from service.ports.log import Log
from service.settings import Settings
from service.usecases.approvals import Approvals
from service.usecases.decide import DecisionResponse, DecisionService
from service.usecases.review import ReviewService
from service.usecases.shadow import Shadow
from service.usecases.versions import RunningVersion

log = logging.getLogger("opsgate.runtime")


class Runtime:
    """Everything one serving process holds; started and closed as a unit."""

    def __init__(
        self,
        settings: Settings,
        log_store: Log,
        served: RunningVersion,
        shadow: Shadow | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()  # GET /metrics; OPA's state is read from the version served
        self.metrics.watch_opa(lambda: self.guardrails.status())
        self.shadow = shadow  # a candidate decided beside every request (serve --shadow), or None
        self.log = log_store
        self.current = served
        self.history: list[str] = [served.version]  # versions served, oldest first
        self.review = ReviewService(log_store.records, log_store.versions, self.use)
        self.approvals = Approvals(log_store.approvals, self.review)
        self.metrics.on_scrape(self._count_pending)  # the pending approvals gauge, counted in the store
        self._swap = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def _count_pending(self) -> None:
        self.metrics.set_pending(await self.approvals.pending_count())

    # the version serving right now (a request should take ``use()`` instead)
    @property
    def catalog(self) -> Catalog:
        return self.current.catalog

    @property
    def guardrails(self) -> Guardrails:
        return self.current.guardrails

    @property
    def service(self) -> DecisionService:
        return self.current.service

    @asynccontextmanager
    async def use(self) -> AsyncIterator[RunningVersion]:
        """The current version, held for the whole of one request."""
        served = self.current
        served.in_flight += 1
        try:
            yield served
        finally:
            served.in_flight -= 1

    @classmethod
    async def start(
        cls, settings: Settings, *, with_shadow: bool = False, log_factory: Callable[[Settings], Log] | None = None
    ) -> Runtime:
        """Open the log (``log_factory``, by default the one ``settings`` name), load and start the
        version on disk."""
        log_store = (log_factory or _open_log)(settings)
        metrics = Metrics()
        try:
            catalog = await asyncio.to_thread(load_catalog, settings.rules_dir, settings.rego_dir)
            served = await prepare(
                settings, log_store, catalog, settings.rules_dir, settings.rego_dir, check_rego=False, metrics=metrics
            )
        except BaseException:
            log_store.close()
            raise
        try:
            shadow = await Shadow.start(settings) if with_shadow else None
        except BaseException:
            await served.close()
            log_store.close()
            raise
        return cls(settings, log_store, served, shadow, metrics)

    # --- changing the served version ---------------------------------------------

    async def reload(self) -> dict[str, Any]:
        """Load rules/ and rego/ from disk as a new version, fully validated, then swap to it."""
        return await self._replace(self.settings.rules_dir, self.settings.rego_dir, "reload")

    async def activate(self, version: str) -> dict[str, Any]:
        """Serve a stored version again (any version the log has registered)."""
        version = await self.review.resolve(version)
        files = await self.log.versions.version_files(version)
        scratch = Path(tempfile.mkdtemp(prefix="opsgate-version-"))
        try:
            for file in files:
                target = scratch / file.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(file.content)
            (scratch / "rules").mkdir(exist_ok=True)
            (scratch / "rego").mkdir(exist_ok=True)
            return await self._replace(scratch / "rules", scratch / "rego", f"activate {version[:12]}", expect=version)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def rollback(self) -> dict[str, Any]:
        """Serve the version that was served before the current one."""
        earlier = [v for v in self.history[:-1] if v != self.current.version]
        if not earlier:
            raise Conflict("no earlier version to roll back to")
        return await self.activate(earlier[-1])

    async def _replace(self, rules_dir: Path, rego_dir: Path, why: str, expect: str | None = None) -> dict[str, Any]:
        async with self._swap:
            previous = self.current
            catalog = await asyncio.to_thread(load_catalog, rules_dir, rego_dir)  # unchanged files: no new OPA
            if expect is not None and catalog.version != expect:  # stored files that no longer hash to it
                raise Conflict(
                    f"stored version {expect[:12]}… rebuilds as {catalog.version[:12]}…: see opsgate log verify"
                )
            if catalog.version == previous.version:
                return self._swapped(previous, previous, why, changed=False)
            if self.settings.opa_url and catalog.policies.hashed != previous.catalog.policies.hashed:
                raise Conflict(
                    "rego/ changed, but the guardrails run in an external OPA (--opa-url) that opsgate does not "
                    "load: update that OPA's policies, then reload with the matching rego/"
                )
            served = await prepare(
                self.settings, self.log, catalog, rules_dir, rego_dir, check_rego=True, metrics=self.metrics
            )
            self.current = served
            self.history.append(served.version)
            task = asyncio.create_task(previous.retire())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            log.info("%s: now serving version %s (was %s)", why, served.version[:12], previous.version[:12])
            return self._swapped(previous, served, why, changed=True)

    @staticmethod
    def _swapped(previous: RunningVersion, served: RunningVersion, why: str, *, changed: bool) -> dict[str, Any]:
        return {
            "action": why.split()[0],
            "changed": changed,
            "version": served.version,
            "previous": previous.version,
            "rulesets": served.catalog.ruleset_versions,
        }

    def offer_shadow(self, responses: Iterable[DecisionResponse]) -> None:
        """Hand decided responses to the shadow candidate, if one is configured (compared later,
        off the response path)."""
        if self.shadow is not None:
            for response in responses:
                self.shadow.offer(response)

    async def close(self) -> None:
        for task in list(self._retiring):
            await task
        if self.shadow is not None:
            await self.shadow.close()
        await self.current.close()
        self.log.close()


async def prepare(
    settings: Settings,
    log_store: Log,
    catalog: Catalog,
    rules_dir: Path,
    rego_dir: Path,
    *,
    check_rego: bool,
    metrics: Metrics | None = None,
) -> RunningVersion:
    """Check, compile and start the version ``catalog`` was loaded from ``rules_dir`` and ``rego_dir``;
    raises RulesetInvalid (file:line:column) when broken.  Nothing is served from it until the caller
    swaps it in."""
    # the checking runs off the event loop: requests go on meanwhile
    if check_rego and settings.opa_url is None:
        await asyncio.to_thread(require_valid_policies, settings.opa_bin, rego_dir, "rego")
    limits = JsonLimits(settings.max_json_depth, settings.max_list_length)
    version = await RunningVersion.start(catalog, _guardrails(settings), log_store.records, limits, metrics)
    try:
        git = await asyncio.to_thread(last_commit, rules_dir)
        await log_store.versions.register_version(catalog.version, list(catalog.files), catalog.ruleset_versions, git)
    except BaseException:
        await version.close()
        raise
    return version


def _open_log(settings: Settings) -> Log:
    return open_log(settings.db, settings.writer_id)


def _guardrails(settings: Settings) -> Guardrails:
    return Guardrails(
        settings.opa_bin,
        timeout=settings.opa_timeout_ms / 1000,
        opa_url=settings.opa_url,
        restart_backoff=settings.opa_restart_backoff_s,
        batch_window=settings.opa_batch_window_ms / 1000,
        breaker=CircuitBreaker(
            settings.opa_breaker_failures, settings.opa_breaker_recovery_s, settings.opa_breaker_probes
        ),
        health=HealthPolicy(settings.opa_health_interval_s, settings.opa_unhealthy_restart_s),
    )

"""The served version of one serving process, and its swaps (reload, rollback, activate) that never
fail a request.

A version is served by a ``RunningVersion`` (service/usecases/versions.py).  A request takes
the current one once and finishes on it; a swap replaces the reference, and the
old version's OPA is stopped once its last request is done.  service/bootstrap.py builds a
``Runtime`` with the real adapters and hands it the function that starts a new version.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from service.authoring.catalog import Catalog, load_catalog
from service.errors import Conflict
from service.ports.guardrails import VersionGuardrails
from service.ports.log import Log
from service.settings import Settings
from service.usecases.answer import DecisionResponse
from service.usecases.approvals import Approvals
from service.usecases.decide import DecisionService
from service.usecases.review import ReviewService
from service.usecases.shadow import Shadow
from service.usecases.versions import RunningVersion

log = logging.getLogger("opsgate.runtime")

# checks, compiles, starts and registers the version loaded as ``catalog`` from (rules_dir, rego_dir)
StartVersion = Callable[[Catalog, Path, Path], Awaitable[RunningVersion]]


class Runtime:
    """Everything one serving process decides with; closed as a unit (the log stays its opener's)."""

    def __init__(
        self,
        settings: Settings,
        log_store: Log,
        served: RunningVersion,
        start_version: StartVersion,
        shadow: Shadow | None = None,
        retired: Callable[[], None] = lambda: None,
    ) -> None:
        """``retired``: called once a replaced version has been retired (bootstrap: ``service.heap.resettle``)."""
        self.settings = settings
        self.shadow = shadow  # a candidate decided beside every request (serve --shadow), or None
        self.log = log_store
        self.current = served
        self.history: list[str] = [served.version]  # versions served, oldest first
        self.review = ReviewService(log_store.records, log_store.versions, self.use)
        self.approvals = Approvals(log_store.approvals, self.review)
        self._start_version = start_version
        self._swap = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._retired = retired

    # the version serving right now (a request should take ``use()`` instead)
    @property
    def catalog(self) -> Catalog:
        return self.current.catalog

    @property
    def guardrails(self) -> VersionGuardrails:
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
            served = await self._start_version(catalog, rules_dir, rego_dir)
            self.current = served
            self.history.append(served.version)
            task = asyncio.create_task(_retire(previous))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            task.add_done_callback(lambda _: self._retired())
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
        """Stop every version this runtime started (the retiring ones once drained), and the shadow."""
        for task in list(self._retiring):
            await task
        if self.shadow is not None:
            await self.shadow.close()
        await self.current.close()


async def _retire(version: RunningVersion) -> None:
    """Retire a replaced version; a failure is logged, and the task ends without holding the version
    (its traceback would, and the ``retired`` hook would then freeze it again)."""
    try:
        await version.retire()
    except Exception:
        log.exception("retiring version %s failed", version.version[:12])

"""``serve --watch``: poll rules/ and rego/ and reload when their content changes.

Polling a content hash needs no platform file-notification API and sees edits
made through any path (editors that write a new file and rename it, copies,
git checkouts).  A change goes through the runtime's ``reload``, the same path as
``POST /admin/reload``: a broken change is logged with its file:line:column
problems and the version being served stays.  With ``serve --workers N`` worker 0 watches, and its
reload reaches every worker (service/usecases/fleet.py), so they all move to the same version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from service.authoring.catalog import Catalog
from service.background import beside
from service.domain.ruleset import content_hash
from service.errors import OpsgateError
from service.settings import Settings
from service.usecases.versions import RunningVersion

log = logging.getLogger("opsgate.watch")


class Reloadable(Protocol):
    """What the watch needs of the serving process (service/usecases/fleet.py's Fleet)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def current(self) -> RunningVersion: ...

    @property
    def catalog(self) -> Catalog: ...

    async def reload(self) -> dict[str, Any]: ...


def tree_hash(dirs: tuple[Path, ...]) -> str:
    """The content hash (as of a ruleset version) over the relative path and content of every file under ``dirs``."""
    files: list[tuple[str, bytes]] = []
    for index, root in enumerate(dirs):
        for path in (p for p in root.rglob("*") if p.is_file()):
            try:
                files.append((f"{index}/{path.relative_to(root)}", path.read_bytes()))
            except OSError:  # deleted between listing and reading: the next poll sees it gone
                continue
    return content_hash(files)


async def watch(runtime: Reloadable, interval_s: float) -> None:
    """Reload whenever the watched files change; runs until cancelled."""
    dirs = (runtime.settings.rules_dir, runtime.settings.rego_dir)
    seen = await _poll(dirs)
    log.info("watching %s every %.1f s", " and ".join(map(str, dirs)), interval_s)
    while True:
        await asyncio.sleep(interval_s)
        current = await _poll(dirs)
        if current is not None and current != seen:
            seen = current  # a refused change is not retried until the files change again
            await _reload(runtime)


async def _poll(dirs: tuple[Path, ...]) -> str | None:
    """The files' hash, or None when they could not be walked this time (e.g. a directory removed
    during the walk): logged, and the next poll tries again, so the watch outlives it."""
    try:
        return await asyncio.to_thread(tree_hash, dirs)
    except OSError as error:
        log.warning("could not read the watched files (%s); trying again at the next poll", error)
        return None


async def _reload(runtime: Reloadable) -> None:
    try:
        result = await runtime.reload()
    except OpsgateError as error:
        for problem in error.problems:
            log.error("%s", problem)
        log.error("change refused (%s); still serving version %s", error.message, runtime.current.version[:12])
    except Exception:  # the watch must outlive any one failed reload
        log.exception("reload failed; still serving version %s", runtime.current.version[:12])
    else:
        if result["changed"]:  # the runtime has logged the version it now serves
            for warning in runtime.catalog.warnings:
                log.warning("%s", warning)


@asynccontextmanager
async def watching(runtime: Reloadable) -> AsyncIterator[None]:
    """Run the watch beside the app when ``settings.watch`` is on (in worker 0 of several); cancel it
    on the way out."""
    if not runtime.settings.watch or runtime.settings.worker != 0:
        yield
        return
    async with beside(watch(runtime, runtime.settings.watch_interval_s), "opsgate-watch", log):
        yield

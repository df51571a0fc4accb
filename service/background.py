"""A task that runs beside the app for as long as a ``with`` block: the watch, the approval sweeper."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any


@asynccontextmanager
async def beside(work: Coroutine[Any, Any, None], name: str, log: logging.Logger) -> AsyncIterator[None]:
    """Run ``work`` as task ``name`` inside the block; cancel it on the way out.  A task that had died
    is logged, and shutdown goes on."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        try:
            with suppress(asyncio.CancelledError):
                await task
        except Exception:
            log.exception("the %s had stopped", name.removeprefix("opsgate-"))

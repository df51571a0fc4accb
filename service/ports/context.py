"""The context port: what filling a decision's missing fact groups needs of an HTTP client."""

from __future__ import annotations

from typing import Any, Protocol


class ContextFetcher(Protocol):
    """GETs a provider's JSON; every failure (refused, timed out, not 200, not JSON) is raised as
    ``service.errors.ContextUnavailable`` with the reason."""

    async def get_json(self, url: str, timeout_s: float) -> Any: ...

    async def close(self) -> None: ...

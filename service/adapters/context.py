"""The context providers' HTTP client: one ``httpx.AsyncClient`` per process, closed at shutdown.

httpx costs more event-loop time per call than the hand-written OPA client (docs: DESIGN), and is
acceptable here: a provider is asked only when a request leaves its group out, and its answers are
cached (service/usecases/context.py).  Redirects are not followed: the ruleset names the source.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from service.errors import ContextUnavailable

MAX_BODY_BYTES = 1024 * 1024  # a provider's answer larger than this is refused


class HttpContextFetcher:
    """GETs JSON from context providers (service/ports/context.py)."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._client = httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False)

    async def get_json(self, url: str, timeout_s: float) -> Any:
        try:
            response = await self._client.get(url, timeout=timeout_s, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise ContextUnavailable(f"timed out after {timeout_s * 1000:g} ms") from None
        except httpx.HTTPError as error:
            raise ContextUnavailable(f"unreachable: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise ContextUnavailable(f"answered HTTP {response.status_code}")
        if len(response.content) > MAX_BODY_BYTES:
            raise ContextUnavailable(f"answered more than {MAX_BODY_BYTES} bytes")
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError as error:
            raise ContextUnavailable(f"answered something other than JSON: {error}") from None

    async def close(self) -> None:
        await self._client.aclose()

"""One action delivered to its executor: a signed JSON POST with its idempotency key.

The body is the outbox item's (``service.adapters.store.outbox``); ``X-Opsgate-Signature`` is
``sha256=<hex HMAC-SHA256 of the body with the executor's secret>`` (as the export's HTTP sink
signs), ``Idempotency-Key`` is ``<decision_id>:<action_index>``, the same on every attempt, so an
executor drops a repeated delivery.  The standard library's client runs on worker threads, with a
few kept-alive connections per executor (the service has no HTTP client dependency; see
``service.adapters.export.webhook`` for the same choice).
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from urllib.parse import urlsplit

from service.adapters.export.webhook import SIGNATURE_HEADER, signature
from service.errors import InvalidSettings
from service.ports.executors import Answered, ExecutorConfig, OutboxItem

MAX_ANSWER = 64 * 1024  # the most of an executor's answer kept in the outcome record


class HttpExecutor:
    """The executor of one action type: POSTs to ``config.url``."""

    def __init__(self, action_type: str, config: ExecutorConfig, secret: bytes) -> None:
        url = urlsplit(config.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidSettings(f"executor {action_type!r}: url must be http:// or https://, got {config.url!r}")
        self.action_type = action_type
        self.config = config
        self.secret = secret
        self._url = url
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    async def send(self, item: OutboxItem) -> Answered:
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, body),
            "Idempotency-Key": item.key,
            "X-Opsgate-Attempt": str(item.attempts + 1),
        }
        return await asyncio.to_thread(self._post, body, headers)

    def _post(self, body: bytes, headers: dict[str, str]) -> Answered:
        connection = self._take()
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read(MAX_ANSWER + 1)[:MAX_ANSWER].decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return Answered(None, "", f"POST {self.config.url}: {type(error).__name__}: {error}")
        if response.will_close or not response.isclosed():
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        refused = None if 200 <= response.status < 300 else f"POST {self.config.url}: answered {response.status}"
        return Answered(response.status, text, refused)

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        kind = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
        return kind(self._url.hostname or "", self._url.port, timeout=self.config.timeout_s)

    async def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

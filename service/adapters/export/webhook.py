"""The HTTP sink: one JSON message per POST, signed, retried with exponential backoff and jitter.

The body is the message as ``opsgate log export`` writes it; the header ``X-Opsgate-Signature``
is ``sha256=<hex HMAC-SHA256 of the body with the sink's secret>``, and ``Idempotency-Key`` is
the message id (``writer:seq``), so a receiver can drop a message delivered twice.  Any answer
but 2xx, or no answer within the timeout, is retried after ``backoff_s`` doubled at each attempt
(at most ``max_backoff_s``), each delay drawn between half and all of it; after ``attempts`` the
sink counts as down and the exporter keeps its cursor.  The standard library's keep-alive client
runs on a thread of its own (one message at a time keeps the order; no HTTP client is a
dependency of the service).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import os
import random
from pathlib import Path
from urllib.parse import urlsplit

from service.domain.export import Message, encode
from service.errors import InvalidSettings
from service.ports.export import HttpSinkConfig, SinkUnavailable

SIGNATURE_HEADER = "X-Opsgate-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def read_secret(secret_env: str | None, secret_file: str | None) -> bytes:
    """A signing secret from exactly one of a variable or a file (an export sink's, an executor's);
    InvalidSettings when both or neither are set, or when it is missing or empty."""
    if (secret_env is None) == (secret_file is None):
        raise InvalidSettings("set exactly one of secret_env and secret_file")
    if secret_env is not None:
        text = os.environ.get(secret_env, "")
        where = f"variable {secret_env}"
    else:
        path = Path(secret_file or "")
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        where = f"file {path}"
    if not text:
        raise InvalidSettings(f"the secret in {where} is missing or empty")
    return text.encode()


def sink_secret(config: HttpSinkConfig) -> bytes:
    """The sink's secret (``read_secret``), its errors naming the sink."""
    try:
        return read_secret(config.secret_env, config.secret_file)
    except InvalidSettings as error:
        raise InvalidSettings(f"export sink {config.name!r}: {error.message}") from None


class WebhookSink:
    def __init__(self, config: HttpSinkConfig, secret: bytes) -> None:
        url = urlsplit(config.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InvalidSettings(f"export sink {config.name!r}: url must be http:// or https://, got {config.url!r}")
        self.config = config
        self.secret = secret
        self._url = url
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._connection: http.client.HTTPConnection | None = None

    @property
    def name(self) -> str:
        return self.config.name

    async def send(self, messages: list[Message]) -> None:
        for message in messages:
            await self._deliver(message)

    async def _deliver(self, message: Message) -> None:
        body = encode(message)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, body),
            "Idempotency-Key": message.message_id,
        }
        delay = self.config.backoff_s
        for attempt in range(1, self.config.attempts + 1):
            problem = await asyncio.to_thread(self._post, body, headers)
            if problem is None:
                return
            if attempt == self.config.attempts:
                raise SinkUnavailable(f"POST {self.config.url}: {problem} ({attempt} attempts)")
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: retries from replicas spread out
            delay = min(delay * 2, self.config.max_backoff_s)

    def _post(self, body: bytes, headers: dict[str, str]) -> str | None:
        """One POST on the kept-alive connection; None when answered 2xx, else what went wrong."""
        try:
            connection = self._connection or self._connect()
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            self._close()
            return f"{type(error).__name__}: {error}"
        if response.will_close:
            self._close()
        return None if 200 <= response.status < 300 else f"answered {response.status}"

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(self._url.hostname or "", self._url.port, timeout=self.config.timeout_s)
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

"""The NATS JetStream sink: each message published with its JetStream acknowledgement awaited.

A record goes to ``<subject>.<writer>`` and a checkpoint to ``<subject>.checkpoints``, each with
the header ``Nats-Msg-Id`` (``writer:seq``, ``checkpoint:<name>``) so the stream drops a message
sent again within its duplicate window.  A batch is published in order on one connection without
waiting between messages, then every acknowledgement is awaited; when ``ack_timeout_s`` pass
without one more message published or acknowledged, the batch fails, the connection is dropped
(a silent network must not keep a stale one), and the exporter sends the batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from service.domain.export import Message, RecordMessage, encode
from service.ports.export import NatsSinkConfig, SinkUnavailable

log = logging.getLogger("opsgate.export.nats")
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


class JetStreamSink:
    def __init__(self, config: NatsSinkConfig) -> None:
        self.config = config
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def subject(self, message: Message) -> str:
        if isinstance(message, RecordMessage):
            return f"{self.config.subject}.{_TOKEN.sub('_', message.writer)}"
        return f"{self.config.subject}.checkpoints"

    async def send(self, messages: list[Message]) -> None:
        try:
            js = await self._connected()
            await self._publish(js, messages)
        except (TimeoutError, NatsError, OSError) as error:
            await self._drop()
            raise SinkUnavailable(f"NATS {self.config.url}: {type(error).__name__} {error}".strip()) from error

    async def _publish(self, js: JetStreamContext, messages: list[Message]) -> None:
        """Publish in order, then await every ack; fails when ``ack_timeout_s`` pass without progress
        (a deadline on the whole batch would never let a large batch through a slow link)."""
        loop, wait = asyncio.get_running_loop(), self.config.ack_timeout_s
        async with asyncio.timeout(wait) as deadline:
            acks = []
            for message in messages:
                headers = {"Nats-Msg-Id": message.message_id}
                acks.append(await js.publish_async(self.subject(message), encode(message), headers=headers))
                deadline.reschedule(loop.time() + wait)
            for ack in acks:
                await ack  # an APIError (e.g. no such stream) raises here
                deadline.reschedule(loop.time() + wait)

    async def _connected(self) -> JetStreamContext:
        if self._js is not None and self._client is not None and self._client.is_connected:
            return self._js
        await self._drop()
        client = await nats.connect(
            self.config.url, connect_timeout=max(1, int(self.config.ack_timeout_s)), allow_reconnect=False,
            max_reconnect_attempts=0, error_cb=_quiet, disconnected_cb=None, name="opsgate-export",
        )  # fmt: skip
        self._client, self._js = client, client.jetstream(timeout=self.config.ack_timeout_s)
        await self._ensure_stream(self._js)
        return self._js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.config.stream)
        except NotFoundError:
            await js.add_stream(name=self.config.stream, subjects=[f"{self.config.subject}.>"])
            log.info("created JetStream stream %s for %s.>", self.config.stream, self.config.subject)

    async def _drop(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            # a connection into a silent network may not close politely: never wait long for it
            with contextlib.suppress(TimeoutError, NatsError, OSError):
                await asyncio.wait_for(client.close(), 1.0)

    async def close(self) -> None:
        await self._drop()


async def _quiet(error: Any) -> None:
    log.debug("nats: %s", error)

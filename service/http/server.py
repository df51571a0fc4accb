"""The HTTP/1.1 connections opsgate serves: uvicorn's httptools protocol with the limits it lacks.

uvicorn closes a kept-alive connection left idle after a response, but a connection that never
sends a request, that sends its headers a few bytes at a time, or that sends one header of 32 MB
stays open (and buffered) for ever: a few hundred of them use up the process's file descriptors,
and then /decide, /health and the OPA health check all fail.  ``GuardedProtocol`` adds:

- a header deadline: from the connection's start (or a later request's first byte) to the end of
  that request's headers; past it the connection is closed (with 408 if a request had begun);
- a limit on a request's head (request line and headers): 431, then the connection is closed;
- a connection cap per process: a connection over it is answered 503 and closed at once, so it
  holds no descriptor while it waits.

It also ends every request of a connection whose client went away, the running one and those
pipelined behind it (uvicorn marks only the last one read, so the running one wrote into a closed
transport and logged a traceback): one INFO line says how many went unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import time
from typing import Any, ClassVar

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from service.errors import HeadersTooLarge, HeaderTimeout, OpsgateError, TooManyConnections
from service.http.envelope import item_error
from service.settings import Settings

log = logging.getLogger("opsgate.http")

# descriptors kept back from the cap for what the process needs besides its clients: the listening
# socket, the OPA children's pipes and connections, the decision log, the event loop
FD_RESERVE = 128
_REFUSAL_LOG_EVERY_S = 10.0


class ConnectionLimits(msgspec.Struct, frozen=True):
    header_timeout_s: float
    max_header_bytes: int
    max_connections: int


class _TooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class _Refusals:
    """Connections refused over the cap, logged at most one line every 10 s."""

    def __init__(self) -> None:
        self.count = 0
        self.logged_at = -math.inf

    def add(self, cap: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= _REFUSAL_LOG_EVERY_S:
            log.warning("connection cap of %d reached: %d connection(s) refused with 503", cap, self.count)
            self.count, self.logged_at = 0, now


def answer(error: OpsgateError) -> bytes:
    """A whole HTTP/1.1 response closing the connection, with ``error``'s envelope as its body."""
    body = msgspec.json.encode(item_error(error))
    head = [f"HTTP/1.1 {error.status} {_REASONS[error.status]}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"]  # fmt: skip
    head += [f"{name.lower()}: {value}" for name, value in error.headers().items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, a head size limit and a connection cap."""

    limits: ClassVar[ConnectionLimits]
    refusals: ClassVar[_Refusals]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_open = False  # a request's head has begun and is not complete
        self.head_read = 0  # bytes of the reads that fell wholly inside the open head
        self.head_parsed = 0  # bytes of its URL and complete headers
        self.running: RequestResponseCycle | None = None
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.refused = True
            self.refusals.add(self.limits.max_connections)
            transport.write(answer(TooManyConnections(f"over {self.limits.max_connections} open connections")))
            transport.close()
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self.refused:
            return
        unanswered = self._abandon_requests()
        if unanswered > 1:
            log.info("client %s went away with %d pipelined requests unanswered", _peer(self.client), unanswered)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with a head over the limit answered 431 instead of 400."""
        if self.refused:
            return
        continuing = self.head_open
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _TooLarge):
                self._refuse(answer(HeadersTooLarge(f"request head over {self.limits.max_header_bytes} bytes")))
            else:
                self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if continuing and self.head_open:  # the whole read belongs to the same unfinished head
            self.head_read += len(data)
            if self.head_read > self.limits.max_header_bytes:
                self._refuse(answer(HeadersTooLarge(f"request head over {self.limits.max_header_bytes} bytes")))

    # the parser's callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_open, self.head_read, self.head_parsed = True, 0, 0
        if self.head_timer is None:
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_open = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        # httptools gives a header only once it is whole (buffered as it comes): the reads counted in
        # data_received bound a head that never ends; this bounds one that arrives in a single read
        self.head_parsed += size
        if max(self.head_parsed, self.head_read) > self.limits.max_header_bytes:
            raise _TooLarge

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self.running = cycle
        super()._start_asgi_task(cycle, app)

    # closing
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timeout(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # pipelined requests wait before it: this one is not being read
            self._arm_head_timer()
            return
        if not self.head_open:  # nothing sent: close without an answer nobody asked for
            self._drop()
            return
        self._refuse(answer(HeaderTimeout(f"request headers not received within {self.limits.header_timeout_s:g} s")))

    def _refuse(self, response: bytes) -> None:
        self.transport.write(response)
        self._drop()

    def _invalid(self) -> None:
        self.logger.warning("Invalid HTTP request received.")
        self._abandon_requests()
        self.send_400_response("Invalid HTTP request received.")

    def _drop(self) -> None:
        self._abandon_requests()
        self.transport.close()

    def _abandon_requests(self) -> int:
        """Marks the running request and those pipelined behind it disconnected (their answers are
        dropped, not written into a closed transport); returns how many were unanswered."""
        cycles = [self.running] if self.running is not None else []
        cycles += [cycle for cycle, _ in self.pipeline]
        self.pipeline.clear()
        unanswered = 0
        for cycle in cycles:
            if not cycle.response_complete:
                unanswered += 1
                cycle.disconnected = True
                cycle.message_event.set()
        return unanswered


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def connection_cap(configured: int) -> int:
    """``configured``, lowered to what the open-file limit leaves after FD_RESERVE (at least 1)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or configured <= soft - FD_RESERVE:
        return configured
    cap = max(1, soft - FD_RESERVE)
    log.warning("max connections lowered from %d to %d: the open-file limit is %d", configured, cap, soft)
    return cap


def protocol_class(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """A protocol class bound to ``limits``; uvicorn builds one instance of it per connection."""

    class OpsgateProtocol(GuardedProtocol):
        pass

    OpsgateProtocol.limits = limits
    OpsgateProtocol.refusals = _Refusals()
    return OpsgateProtocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options ``uvicorn.Config`` takes from the settings (one process or each worker alike)."""
    limits = ConnectionLimits(
        settings.header_timeout_s, settings.max_header_bytes, connection_cap(settings.max_connections)
    )
    return {
        "loop": "uvloop", "http": protocol_class(limits), "access_log": False, "log_level": "info",
        "timeout_keep_alive": settings.keep_alive_timeout_s, **forwarded(settings),
    }  # fmt: skip


def forwarded(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: X-Forwarded-For/-Proto believed only from the configured proxies.  uvicorn
    alone would believe them from loopback (or FORWARDED_ALLOW_IPS), so any local client could claim
    any address and escape the per-address limits."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.trusted_proxies}

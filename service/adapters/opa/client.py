"""A small keep-alive HTTP/1.1 client for OPA's REST API, over a unix socket or TCP.

General-purpose clients cost far more event-loop time per call than OPA spends
answering (DESIGN.md), so this one does only what OPA needs: POST a JSON body,
read a Content-Length (or chunked) JSON answer, keep the connection for reuse.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import msgspec

from service.errors import OpaHttpError


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class OpaHttpClient:
    """POSTs JSON to OPA, reusing idle connections (one per concurrent query)."""

    def __init__(self, address: str, pool_size: int = 16) -> None:
        """``address`` is ``unix:///path/to.sock`` or ``http://host:port``."""
        self.address = address
        self._idle: list[_Connection] = []
        self._pool_size = pool_size
        url = urlsplit(address)
        self._unix = url.path if url.scheme == "unix" else None
        self._host = url.hostname or "localhost"
        self._port = url.port or 80
        self._prefix = "" if self._unix else url.path.rstrip("/")

    async def _connect(self) -> _Connection:
        try:
            if self._unix is not None:
                reader, writer = await asyncio.open_unix_connection(self._unix)
            else:
                reader, writer = await asyncio.open_connection(self._host, self._port)
        except OSError as error:
            raise OpaHttpError(f"cannot connect to OPA at {self.address}: {error.strerror or error}") from error
        return _Connection(reader, writer)

    async def post(self, path: str, body: bytes) -> bytes:
        """POST ``body`` to ``path``; returns the response body of a 200, else raises."""
        status, payload = await self.request(path, body)
        if status != 200:
            raise OpaHttpError(f"OPA answered {status}: {payload[:300].decode(errors='replace')}")
        return payload

    async def request(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; the status and body of whatever OPA answered (raises when none)."""
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            status, payload = await self._exchange(connection, path, body)
        except BaseException:
            connection.close()  # a cancelled or broken exchange leaves the stream unusable
            raise
        if len(self._idle) < self._pool_size:
            self._idle.append(connection)
        else:
            connection.close()
        return status, payload

    async def get(self, path: str) -> int:
        connection = await self._connect()
        try:
            request = f"GET {self._prefix}{path} HTTP/1.1\r\nHost: {self._host}\r\nConnection: close\r\n\r\n"
            connection.writer.write(request.encode())
            status, _ = await self._read_response(connection)
            return status
        finally:
            connection.close()

    async def _exchange(self, connection: _Connection, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        connection.writer.write(head.encode() + body)
        return await self._read_response(connection)

    async def _read_response(self, connection: _Connection) -> tuple[int, bytes]:
        try:
            head = await connection.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
            raise OpaHttpError(f"OPA closed the connection: {error!r}") from error
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as error:
            raise OpaHttpError(f"bad status line from OPA: {lines[0]!r}") from error
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, await self._read_chunked(connection)
        length = int(headers.get("content-length", "0"))
        try:
            return status, await connection.reader.readexactly(length)
        except (asyncio.IncompleteReadError, OSError) as error:
            raise OpaHttpError(f"OPA closed the connection mid-answer: {error!r}") from error

    async def _read_chunked(self, connection: _Connection) -> bytes:
        parts: list[bytes] = []
        try:
            while True:
                size = int((await connection.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await connection.reader.readuntil(b"\r\n")
                    return b"".join(parts)
                parts.append(await connection.reader.readexactly(size + 2))
                parts[-1] = parts[-1][:-2]
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as error:
            raise OpaHttpError(f"bad chunked answer from OPA: {error!r}") from error

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


_ENCODER = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    return _ENCODER.encode(value)

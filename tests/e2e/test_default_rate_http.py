"""With default settings, one caller driving a real server as fast as it answers gets no 429 (issue 18, item 4).

The client pipelines its requests over 48 keep-alive connections (each connection's requests written at
once, the answers read in order), so the server, not the client, sets the pace; fewer connections than the
admission bound (64 decisions in flight), so nothing is shed either: every answer must be 200 and logged.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts

REQUESTS = 3_000
CONNECTIONS = 48  # below the default admission bound of 64: a 503 overloaded would be a failure too
OLD_DEFAULT = 1_000  # requests a second, and the burst: what the rate limit was before issue 18


async def _connection(port: int, request: bytes, count: int) -> list[int]:
    """Writes ``count`` copies of ``request`` at once on one connection, then reads the answers' statuses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request * count)
        await writer.drain()
        statuses = []
        for _ in range(count):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in head[1:] if line)
            lengths = [value for name, value in headers.items() if name.lower() == "content-length"]
            assert lengths, f"an answer without Content-Length: {head}"
            await reader.readexactly(int(lengths[0]))
            statuses.append(int(head[0].split()[1]))
        return statuses
    finally:
        writer.close()


async def _drive(port: int) -> list[int]:
    body = json.dumps(ops_facts()).encode()
    request = (
        f"POST /decide HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    shares = [REQUESTS // CONNECTIONS + (1 if k < REQUESTS % CONNECTIONS else 0) for k in range(CONNECTIONS)]
    answers = await asyncio.wait_for(asyncio.gather(*(_connection(port, request, n) for n in shares)), 300)
    return [status for statuses in answers for status in statuses]


def test_one_caller_at_full_speed_with_default_settings_gets_no_429(start_server: Callable[..., Server]) -> None:
    server = start_server(RULES_DIR, REGO_DIR)  # no OPSGATE_RATE_LIMIT: the defaults
    started = time.monotonic()
    statuses = asyncio.run(_drive(server.port))
    elapsed = time.monotonic() - started
    old_admits = OLD_DEFAULT * (1 + elapsed)  # a bucket of 1,000 refilled at 1,000 a second, meanwhile
    print(f"{REQUESTS} decisions in {elapsed:.2f} s ({REQUESTS / elapsed:.0f}/s); old default: {old_admits:.0f}")
    assert Counter(statuses) == {200: REQUESTS}
    with sqlite3.connect(server.db) as connection:
        logged = connection.execute("SELECT count(*) FROM log_entries WHERE kind = 'decision'").fetchone()[0]
    assert logged == REQUESTS

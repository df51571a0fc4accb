"""Connection limits on a real server: idle and slow connections are closed, an oversized head is
refused, the connection cap answers 503, and a client leaving mid-pipeline costs one quiet line.

Every wait polls for its condition with a bounded deadline: without the limits the sockets stay
open, and the test fails when the deadline passes instead of hanging."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts

DEADLINE_S = 20.0  # the limits close within about 1 s; the rest is room for a loaded machine
HEAD_LIMIT = 8192
PARTIAL = b"GET /health HTTP/1.1\r\nHost: opsgate\r\nX-Slow: "


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("connections"), RULES_DIR, REGO_DIR, opa_bin,
        OPSGATE_HEADER_TIMEOUT_S="1", OPSGATE_KEEP_ALIVE_TIMEOUT_S="1", OPSGATE_MAX_HEADER_BYTES=str(HEAD_LIMIT),
    )  # fmt: skip
    yield running
    running.stop()


def connect(server: Server, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S)
    if first:
        sock.sendall(first)
    sock.setblocking(False)
    return sock


def wait_closed(
    socks: list[socket.socket], dribble: list[socket.socket] | None = None, until: int | None = None
) -> dict[socket.socket, bytes]:
    """Reads every socket until the server closes it (EOF or reset), sending one more header byte to
    each of ``dribble`` every 0.2 s meanwhile; returns what each closed one received.  Stops when
    ``until`` of them are closed (all by default) or after DEADLINE_S."""
    received = {sock: b"" for sock in socks}
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline, drip = time.monotonic() + DEADLINE_S, 0.0
        while len(closed) < (len(socks) if until is None else until) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    received[sock] += data
                    continue
                selector.unregister(sock)
                closed[sock] = received[sock]
            if time.monotonic() < drip:
                continue
            drip = time.monotonic() + 0.2
            for sock in [sock for sock in dribble or [] if sock not in closed]:
                with contextlib.suppress(OSError):  # closed by the server: the next read says so
                    sock.send(b"a")
    return closed


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def assert_answering(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert client.post("/decide", json=ops_facts()).status_code == 200


def test_idle_and_slow_connections_are_closed_while_the_service_keeps_answering(limited: Server) -> None:
    idle = [connect(limited) for _ in range(200)]
    partial = [connect(limited, PARTIAL) for _ in range(80)]
    dribbling = [connect(limited, PARTIAL) for _ in range(20)]  # a header byte every 0.2 s, never its end
    try:
        assert_answering(limited)  # with all 300 open
        closed = wait_closed(idle + partial + dribbling, dribble=dribbling)
        still_open = len(idle) + len(partial) + len(dribbling) - len(closed)
        assert still_open == 0, f"{still_open} of 300 idle or slow connections still open after {DEADLINE_S} s"
        assert all(closed[sock] == b"" for sock in idle), "a connection that sent nothing got an answer"
        for sock in partial + dribbling:
            assert closed[sock].startswith(b"HTTP/1.1 408 "), closed[sock][:200]
            assert json.loads(closed[sock].split(b"\r\n\r\n", 1)[1])["error"]["code"] == "header_timeout"
    finally:
        close_all(idle + partial + dribbling)
    assert_answering(limited)


def test_every_worker_closes_idle_and_slow_connections(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs, OPSGATE_WORKERS="2", OPSGATE_HEADER_TIMEOUT_S="1")
    idle = [connect(server) for _ in range(40)]
    partial = [connect(server, PARTIAL) for _ in range(20)]
    try:
        closed = wait_closed(idle + partial)
        assert len(closed) == 60, f"{60 - len(closed)} of 60 idle or slow connections still open after {DEADLINE_S} s"
        assert all(closed[sock].startswith(b"HTTP/1.1 408 ") for sock in partial)
    finally:
        close_all(idle + partial)
    assert_answering(server)
    leave_mid_pipeline(server, 10)
    server.stop()  # a worker's own log lines reach the service log too
    assert "pipelined requests unanswered" in server.log_text()
    assert "Exception in ASGI application" not in server.log_text()


def response_of(sock: socket.socket) -> bytes:
    closed = wait_closed([sock])
    assert closed, f"no answer and no close within {DEADLINE_S} s"
    return closed[sock]


def test_a_head_over_the_limit_is_answered_431_and_closed(limited: Server) -> None:
    whole = connect(limited, PARTIAL + b"a" * (2 * HEAD_LIMIT) + b"\r\n\r\n")
    streamed = connect(limited, PARTIAL)
    try:
        answer = response_of(whole)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "headers_too_large"
        streamed.settimeout(DEADLINE_S)
        sent = 0
        with contextlib.suppress(OSError):  # the server closes the connection while we send: the point
            while sent < 32 * 1024 * 1024:  # one endless header, 4 KB at a time
                sent += streamed.send(b"a" * 4096)
        streamed.setblocking(False)
        answer = response_of(streamed)
        assert sent < 32 * 1024 * 1024, "a 32 MB header was read to its end"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    finally:
        close_all([whole, streamed])
    assert_answering(limited)


def exchange(sock: socket.socket, requests: bytes, count: int) -> bytes:
    """Sends ``requests`` and reads until ``count`` whole /health answers came back."""
    sock.settimeout(DEADLINE_S)
    sock.sendall(requests)
    received = b""
    while received.count(b'{"status":"ok"}') < count:
        data = sock.recv(65536)
        assert data, f"closed after {received.count(b'HTTP/1.1 200 ')} of {count} answers"
        received += data
    return received


def test_a_kept_alive_client_is_served_pipelined_and_closed_once_idle(limited: Server) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: opsgate\r\n\r\n"
    sock = connect(limited)
    try:
        assert exchange(sock, request, 1).startswith(b"HTTP/1.1 200 ")
        assert exchange(sock, request, 1).startswith(b"HTTP/1.1 200 ")  # the same connection, kept alive
        assert exchange(sock, request * 3, 3).count(b"HTTP/1.1 200 ") == 3  # three pipelined
        sock.setblocking(False)
        assert wait_closed([sock]) == {sock: b""}, "a kept-alive idle connection was not closed"
    finally:
        sock.close()


def test_connections_over_the_cap_are_answered_503_and_closed(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    cap = 20
    server = start_server(*copied_dirs, OPSGATE_MAX_CONNECTIONS=str(cap), OPSGATE_HEADER_TIMEOUT_S="60")
    server.client.close()  # its kept-alive connection would take one place
    socks = [connect(server) for _ in range(cap + 10)]
    try:
        closed = wait_closed(socks, until=10)
        assert len(closed) >= 10, f"only {len(closed)} of {cap + 10} connections refused over a cap of {cap}"
        assert len(socks) - len(closed) <= cap
        for answer in closed.values():
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b"retry-after: 1\r\n" in answer
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_connections"
    finally:
        close_all(socks)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:  # the closed ones leave the count as the server sees them go
        with contextlib.suppress(httpx.TransportError), httpx.Client(base_url=server.url, timeout=10) as client:
            if client.get("/health").status_code == 200:
                break
        time.sleep(0.05)
    assert_answering(server)


def leave_mid_pipeline(server: Server, times: int) -> None:
    """``times`` clients each send 30 decisions in one write and reset the connection after the first answer."""
    body = json.dumps(ops_facts()).encode()
    request = b"POST /decide HTTP/1.1\r\nHost: opsgate\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    for _ in range(times):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S)
        sock.sendall(request * 30)
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a clean close
        sock.close()


def test_a_client_leaving_mid_pipeline_is_one_quiet_line_not_a_traceback(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server]
) -> None:
    server = start_server(*copied_dirs)
    leave_mid_pipeline(server, 20)
    assert_answering(server)
    server.stop()  # uvicorn lets the abandoned requests finish before it exits: all they log is written
    log = server.log_text()
    assert "Exception in ASGI application" not in log
    assert "the handler is closed" not in log
    assert "pipelined requests unanswered" in log

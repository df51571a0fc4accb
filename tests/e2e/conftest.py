from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("server"), RULES_DIR, REGO_DIR, opa_bin)
    yield running
    running.stop()


@pytest.fixture
def start_server(tmp_path: Path, opa_bin: str) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(rules: Path, rego: Path, db: str | None = None, **env: str) -> Server:
        running = Server(tmp_path, rules, rego, opa_bin, db, **env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


NATS_URL = "nats://127.0.0.1:4222"  # the machine's NATS server, with JetStream


async def _delete_stream(stream: str) -> None:
    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """A JetStream stream and subject of the test's own (names unique per test), deleted after it."""
    token = uuid.uuid4().hex[:12]
    name, subject = f"OPSGATE_TEST_{token}", f"opsgate-test-{token}"
    try:
        yield name, subject
    finally:
        asyncio.run(_delete_stream(name))

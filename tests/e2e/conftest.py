from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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

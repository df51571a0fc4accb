"""Shared fixtures: paths of the shipped rules and policies, and the real opa binary."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from service import bootstrap
from service.adapters.store import StoreLog, open_log
from service.adapters.store.bodies import register
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
REGO_DIR = ROOT / "rego"

# Only these OPSGATE_* variables of the caller's shell reach the tests: any other (an OPSGATE_DB or
# OPSGATE_RATE_LIMIT exported in CI, say) would change the defaults of every server and CLI run they start.
KEPT_VARIABLES = frozenset({"OPSGATE_OPA_BIN", "OPSGATE_TEST_PG", "OPSGATE_TEST_CHROMIUM"})
# The tests talk only to loopback: a proxy configured in the caller's shell must not sit in between.
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def pytest_configure(config: pytest.Config) -> None:
    for name in list(os.environ):
        # OTEL_*: traces only where a test asks for them (tests/e2e/test_tracing_otlp.py)
        ours = (name.startswith("OPSGATE_") and name not in KEPT_VARIABLES) or name.startswith("OTEL_")
        if ours or name.lower() in PROXY_VARIABLES:
            del os.environ[name]


# The OPA query timeout of the servers and runtimes that tests decide with: the 100 ms default can pass
# while a loaded 2-core machine keeps a healthy OPA waiting, and the decision then fails closed.  The
# tests about OPA timeouts set their own.
OPA_TIMEOUT_MS = 2000

EXAMPLE_FACTS = {
    "org_id": 0,
    "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
    "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
    "history": {"failures": 0, "latency": 500},
}


def opsgate(
    *args: str,
    stdin: str | None = None,
    opa_bin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m service *args`` in the project root and capture its output (never raises on exit code).
    ``env`` is the whole environment (default: this process's); ``opa_bin`` sets OPSGATE_OPA_BIN on top of it."""
    environ = dict(os.environ if env is None else env)
    if opa_bin is not None:
        environ["OPSGATE_OPA_BIN"] = opa_bin
    return subprocess.run(
        [sys.executable, "-m", "service", *args], cwd=ROOT, env=environ, input=stdin, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def verified(db: str, opa_bin: str) -> str:
    """``opsgate log verify --db db``, which must exit 0; its stdout, for the caller's own expectation."""
    result = opsgate("log", "verify", "--db", db, opa_bin=opa_bin)
    assert result.returncode == 0, f"opsgate log verify exited {result.returncode}: {result.stdout}{result.stderr}"
    return result.stdout


def signal_and_wait(pid: int, sig: signal.Signals, within: float = 10.0) -> None:
    """``os.kill(pid, sig)`` for SIGSTOP or SIGKILL, returning once every thread of ``pid`` is stopped or
    gone: kill() returns before a multi-threaded process such as OPA has stopped, and until then one of
    its threads may still answer a query."""
    os.kill(pid, sig)
    settled = {"T", "t"} if sig == signal.SIGSTOP else {"Z", "X"}
    deadline = time.monotonic() + within
    while not _threads_in(pid, settled):
        assert time.monotonic() < deadline, f"process {pid} did not take {sig.name} within {within} s"
        time.sleep(0.001)


def _threads_in(pid: int, states: set[str]) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True  # gone and reaped
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # this thread has exited
        if stat.rpartition(")")[2].split()[0] not in states:
            return False
    return True


@pytest.fixture(scope="session")
def opa_bin() -> str:
    from service.adapters.opa.binary import find_opa

    return find_opa(os.environ.get("OPSGATE_OPA_BIN"))


@pytest.fixture
def copied_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of rules/ and rego/ that a test may edit."""
    rules, rego = tmp_path / "rules", tmp_path / "rego"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(REGO_DIR, rego)
    return rules, rego


@pytest.fixture
def ops_only_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return copy_ops_only(tmp_path)


def copy_ops_only(root: Path, *, cases: bool = False) -> tuple[Path, Path]:
    """``root``/rules with rules/ops.yaml alone (and its cases if asked) and ``root``/rego with the
    policies ops uses: for tests that must not change when other rulesets are added."""
    rules, rego = root / "rules", root / "rego"
    rules.mkdir(parents=True)
    shutil.copy(RULES_DIR / "ops.yaml", rules / "ops.yaml")
    if cases:
        shutil.copytree(RULES_DIR / "tests" / "ops", rules / "tests" / "ops")
    for part in ("config", "guardrails/lib", "guardrails/ops", "opsgate"):
        shutil.copytree(REGO_DIR / part, rego / part)
    return rules, rego


PG_SERVER = os.environ.get("OPSGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A decision log URL on the real PostgreSQL server, in a schema of its own, dropped after."""
    import psycopg

    schema = f"opsgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def log_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The decision log's database, once as a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "decisions.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def log(log_db: str) -> Iterator[StoreLog]:
    """A decision log store (writer "replica-a") on log_db, closed after the test."""
    store = open_log(log_db, "replica-a")
    yield store
    store.close()


def sql(db: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement directly against a decision log's database (to inspect or tamper);
    ``opsgate_body(body)`` is a record's text however it is stored (PostgreSQL stores it as text)."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as connection:
            cursor = connection.execute(statement.replace("opsgate_body(body)", "body").replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []
    with sqlite3.connect(db) as connection:
        register(connection)
        return list(connection.execute(statement, params).fetchall())


@pytest.fixture(params=["sqlite", "postgresql"])
def foreign_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that holds no decision log: a SQLite file with an unrelated table, an empty PostgreSQL schema."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    db = str(tmp_path / "other.db")
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        connection.execute("INSERT INTO notes (text) VALUES ('kept as it is')")
    return db


def tables(db: str) -> list[str]:
    if db.startswith("postgresql://"):
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        return [str(row[0]) for row in sql(db, query)]
    return [str(row[0]) for row in sql(db, "SELECT name FROM sqlite_master ORDER BY 1")]


def decide_in_process(settings: Settings, requests: Iterable[tuple[dict[str, Any], str]]) -> list[str]:
    """Decide each (facts, caller) with ruleset ops through what bootstrap.start builds (the real
    engine, OPA child and log); the decision ids, in order."""

    async def run() -> list[str]:
        running = await bootstrap.start(settings)
        try:
            ids = []
            for facts, caller in requests:
                ruleset = running.runtime.service.catalog.get("ops")
                decoded = ruleset.decoder.decode_json(json.dumps(facts).encode())
                response = await running.runtime.service.decide_facts(ruleset, decoded, caller)
                ids.append(response.result.decision_id)
            return ids
        finally:
            await running.close()

    return asyncio.run(run())

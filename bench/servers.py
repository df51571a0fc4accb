"""What the benchmark measures against: the raw OPA server and `opsgate serve` processes, on loopback only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.adapters.opa.bundle import write_bundle
from service.authoring.policies import read_policies

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("OPSGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (None when it is not JSON)."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def in_tree(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    """How a child runs ``tree``'s own package: with ``tree`` on PYTHONPATH and as its working directory
    (``python -m`` and ``-c`` put the working directory first on sys.path, ahead of PYTHONPATH: started
    from this checkout, the child would import this checkout's package whatever PYTHONPATH says)."""
    return {"env": {**env, "PYTHONPATH": str(tree)}, "cwd": str(tree)}


class Server:
    """A child process answering on ``url``; stopped (by its own pid) on close."""

    db: str | None = None  # the decision log it writes (``--db``), for the benchmark's bytes per decision

    def __init__(
        self, name: str, args: list[str], port: int, ready_path: str, log: Path, env: dict[str, str],
        cwd: str | None = None,
    ) -> None:  # fmt: skip
        self.name, self.port, self.log = name, port, log
        self.base = f"http://{HOST}:{port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        self._ready_path = ready_path

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}; see {self.log}")
            try:
                if http("GET", self.base + self._ready_path, timeout=2.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:g} s; see {self.log}")

    def rss_kb(self) -> int:
        """The resident memory of the serving process itself (not its OPA child)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_opa(opa_bin: str, rego_dir: Path, work: Path, pin: tuple[str, ...] = (), name: str = "opa") -> Server:
    """``opa run --server`` on a loopback port with the bundle the service builds from ``rego_dir``; ``pin``:
    a command prefix (``taskset -c 0-3``)."""
    bundle = write_bundle(read_policies(rego_dir), work / f"{name}-bundle", "bench")
    port = free_port()
    args = [*pin, opa_bin, "run", "--server", "--addr", f"{HOST}:{port}", "--bundle", str(bundle),
            "--skip-version-check", "--disable-telemetry", "--log-level", "error"]  # fmt: skip
    return Server(name, args, port, "/health", work / f"{name}.log", dict(os.environ))


def start_service(
    name: str, opsgate: str, rules: Path, rego: Path, db: str, work: Path, opa_bin: str, log_off: bool,
    extra: tuple[str, ...] = (), pin: tuple[str, ...] = (), tree: Path | None = None, env: dict[str, str] | None = None,
) -> Server:  # fmt: skip
    """``opsgate serve`` on a loopback port; ``log_off``: the same service with its decision log off
    (``python -m bench.logoff``, benchmark only); ``extra``: more ``serve`` flags (--workers, --opa-url);
    ``tree``: served from that source tree (``python -m service``, another commit's worktree) instead;
    ``env``: more environment variables (``OPSGATE_*`` settings)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.logoff"] if log_off else [opsgate]
    if tree is not None:
        command = [sys.executable, "-m", "service"]
    args = [*pin, *command, "serve", "--host", HOST, "--port", str(port), "--rules-dir", str(rules),
            "--rego-dir", str(rego), "--db", db, "--opa-bin", opa_bin, "--writer-id", f"bench-{name}",
            *extra]  # fmt: skip
    # one load generator is one caller: the per-caller rate limit (20,000/s by default) is off here, so that
    # no row can be limited by it on a faster machine
    env = {**os.environ, "OPSGATE_RATE_LIMIT": "0", **(env or {})}
    if log_off:  # bench.logoff is found from any working directory
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    child: dict[str, Any] = {"env": env}
    if tree is not None:  # its own package, not this checkout's nor the one installed in the virtual environment
        child = in_tree(tree, env)
    server = Server(name, args, port, "/ready", work / f"{name}.log", **child)
    server.db = db
    return server


@contextmanager
def pg_schema() -> Iterator[str | None]:
    """A decision log URL on the local PostgreSQL in a schema of its own, dropped after; None without a server."""
    try:
        import psycopg

        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)
    except Exception:  # noqa: BLE001 - no server here: the PostgreSQL rows are reported as not available
        yield None
        return
    schema = f"opsgate_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")

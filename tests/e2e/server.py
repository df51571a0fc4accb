"""A real ``opsgate serve`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import OPA_TIMEOUT_MS, ROOT

# every JSON endpoint wants it, even a POST without a body (the /ui forms post forms)
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self, tmp: Path, rules_dir: Path, rego_dir: Path, opa_bin: str, db: str | None = None, **env: str
    ) -> None:
        self.port = free_port()
        self.db = db or str(tmp / "decisions.db")
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable, "-m", "service", "serve", "--port", str(self.port),
            "--rules-dir", str(rules_dir), "--rego-dir", str(rego_dir), "--db", self.db,
        ]  # fmt: skip
        environ = {**os.environ, "OPSGATE_OPA_BIN": opa_bin, "OPSGATE_OPA_TIMEOUT_MS": str(OPA_TIMEOUT_MS), **env}
        # one log per server: a restarted server or a second replica in the same test must not share it
        self.log_path = tmp / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=environ, stdout=self.log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=10)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # a server that never became ready must not outlive its test
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_text()}")
            try:
                if self.client.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready in 30 s")

    def log_text(self) -> str:
        """Everything this server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def decide(self, facts: Any, path: str = "/decide") -> httpx.Response:
        return self.client.post(path, json=facts)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

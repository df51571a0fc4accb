"""--opa-url: an external `opa run --server` (a sidecar) behind the same circuit breaker, killed and restarted."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.adapters.opa.bundle import write_bundle
from service.authoring.policies import read_policies
from tests.e2e.server import Server, free_port
from tests.e2e.test_batch_http import APPROVED
from tests.e2e.test_ops_decisions import result_of


class ExternalOpa:
    """`opa run --server` on a loopback port, serving the bundle built from a rego/ directory."""

    def __init__(self, opa_bin: str, bundle: Path, log: Path) -> None:
        self.opa_bin, self.bundle, self.log_path = opa_bin, bundle, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            self.opa_bin, "run", "--server", "--addr", f"127.0.0.1:{self.port}", "--bundle", str(self.bundle),
            "--skip-version-check", "--disable-telemetry", "--log-level", "error",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"external opa did not start: {self.log_path.read_text()[-500:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def external_opa(tmp_path: Path, opa_bin: str, copied_dirs: tuple[Path, Path]) -> Iterator[ExternalOpa]:
    bundle = write_bundle(read_policies(copied_dirs[1]), tmp_path / "bundle", "external")
    opa = ExternalOpa(opa_bin, bundle, tmp_path / "opa.log")
    opa.start()
    yield opa
    if opa.proc is not None and opa.proc.poll() is None:
        opa.kill()


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within} s"
        time.sleep(0.05)


def test_the_breaker_opens_while_the_external_opa_is_down_and_closes_when_it_is_back(
    copied_dirs: tuple[Path, Path], start_server: Callable[..., Server], external_opa: ExternalOpa
) -> None:
    server = start_server(
        *copied_dirs,
        OPSGATE_OPA_URL=external_opa.url,
        OPSGATE_OPA_BREAKER_FAILURES="3",
        OPSGATE_OPA_BREAKER_RECOVERY_S="2.0",
        OPSGATE_OPA_HEALTH_INTERVAL_S="0.2",
    )

    def opa() -> dict[str, Any]:
        return server.client.get("/ready").json()["opa"]  # type: ignore[no-any-return]

    assert (opa()["mode"], opa()["pid"], opa()["up"], opa()["breaker"]["state"]) == ("external", None, True, "closed")
    first = result_of(server, APPROVED)
    assert first["execution"]["status"] == "APPROVED"
    assert first["explanation"]["guardrails"]["breaker"] == "closed"

    external_opa.kill()
    failed = [result_of(server, APPROVED)["explanation"]["guardrails"] for _ in range(3)]
    assert [(g["available"], g["breaker"]) for g in failed] == [(False, "closed")] * 3
    refused = result_of(server, APPROVED)
    assert refused["decision"]["decision_type"] == "OPS.ESCALATE"
    assert refused["explanation"]["guardrails"]["breaker"] == "open"
    wait_for(lambda: opa()["up"] is False, 10, "/ready did not report the external OPA down")
    assert server.client.get("/ready").status_code == 503
    assert opa()["breaker"]["opened"] >= 1

    external_opa.start()  # the same address again
    wait_for(lambda: result_of(server, APPROVED)["execution"]["status"] == "APPROVED", 30, "decisions did not resume")
    wait_for(lambda: opa()["up"] is True, 10, "/ready did not report the external OPA up")
    after = opa()
    assert after["breaker"]["state"] == "closed"
    assert (after["mode"], after["restarts"]) == ("external", 0)
    assert result_of(server, APPROVED)["explanation"]["guardrails"]["breaker"] == "closed"

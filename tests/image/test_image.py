"""The container image: the Dockerfile built offline under podman, then run as in production (non-root,
read-only root file system, the log in a volume, host networking on a free port).

podman, runc and mmdebstrap are Debian's (``make image-tools`` installs them). The base images are
local: a Debian root file system with Python 3.11 and an image holding only the opa binary, passed as
the Dockerfile's PYTHON_IMAGE and OPA_IMAGE; the Python packages come from a wheelhouse built on the host
(tests/image/offline.py). The build runs with no network at all.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLE_FACTS, ROOT
from tests.e2e.server import JSON, free_port
from tests.image import offline

IMAGE = "localhost/opsgate:test"
READY_WITHIN_S = 90  # a loaded 2-core machine starting Python, durable_rules and OPA in a container


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[offline.Podman]:
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.fail(f"{tool} is missing: run `make image-tools` (apt-get install podman runc mmdebstrap)")
    engine = offline.Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine.remove_everything()


@pytest.fixture(scope="module")
def image(podman: offline.Podman, opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    base, wheels = offline.debian_base(), offline.wheelhouse()
    podman.run("import", "--quiet", str(base), "localhost/opsgate-test-python:3.11", timeout=300)
    opa = offline.opa_tarball(opa_bin, tmp_path_factory.mktemp("opa"))
    podman.run("import", "--quiet", str(opa), "localhost/opsgate-test-opa:1.4.2")
    podman.run(
        # docker format keeps the HEALTHCHECK; one layer per stage is faster to commit and to remove
        "build", "--format", "docker", "--layers=false", "--network", "none", "--tag", IMAGE,
        "--volume", f"{wheels}:/wheels:ro",
        "--build-arg", "PYTHON_IMAGE=localhost/opsgate-test-python:3.11",
        "--build-arg", "OPA_IMAGE=localhost/opsgate-test-opa:1.4.2",
        "--build-arg", "BUILD_PACKAGES=",
        "--build-arg", "PIP_OPTIONS=--no-index --find-links /wheels",
        str(ROOT), timeout=600,
    )  # fmt: skip
    return IMAGE


def production_run(name: str, volume: str, port: int, *command: str, detach: bool = False) -> list[str]:
    """``podman run`` as docs/production.md says: read-only root with a tmpfs on /tmp, the log in a volume."""
    return [
        "run", *(["--detach"] if detach else []), "--name", name,
        "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,mode=1777,size=64m",
        "--volume", f"{volume}:/data", "--env", f"OPSGATE_PORT={port}",
        "--env", "OPSGATE_HOST=127.0.0.1", IMAGE, *command,  # host networking: the test stays on loopback
    ]  # fmt: skip


class Exited(AssertionError):
    pass


def start(podman: offline.Podman, name: str, volume: str) -> httpx.Client:
    """A container serving on a free loopback port, once ``/ready`` answers 200."""
    for _ in range(3):
        port = free_port()
        podman.run(*production_run(name, volume, port, detach=True))
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            return _ready(podman, name, client)
        except Exited as exited:
            client.close()
            if "address already in use" not in str(exited):
                raise
            podman.run("rm", name)  # another process took the free port first: try another one
        except BaseException:
            client.close()
            raise
    raise AssertionError(f"{name} found no free port in three tries")


def _ready(podman: offline.Podman, name: str, client: httpx.Client) -> httpx.Client:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if podman.run("inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
            raise Exited(f"{name} exited:\n{logs(podman, name)}")
        try:
            if client.get("/ready").status_code == 200:
                return client
        except httpx.TransportError:
            pass
        time.sleep(0.25)  # each look runs podman: keep the polling light on a loaded machine
    raise AssertionError(f"{name} was not ready in {READY_WITHIN_S} s:\n{logs(podman, name)}")


def healthy(podman: offline.Podman, name: str) -> None:
    """``podman healthcheck run`` (the image's HEALTHCHECK command, run in the container) until it passes:
    its 3 s timeout can pass on a loaded machine, where the engine would retry it too."""
    deadline = time.monotonic() + 30
    while (check := podman.run("healthcheck", "run", name, check=False)).returncode != 0:
        assert time.monotonic() < deadline, f"the healthcheck fails: {check.stdout}{check.stderr}\n{logs(podman, name)}"
        time.sleep(1)
    assert podman.run("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"


def logs(podman: offline.Podman, name: str) -> str:
    result = podman.run("logs", name, check=False)
    return result.stdout + result.stderr


def stop(podman: offline.Podman, name: str, client: httpx.Client) -> None:
    client.close()
    podman.run("stop", "--time", "20", name, timeout=60)
    exit_code = podman.run("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert exit_code == "0", f"{name} did not stop cleanly on SIGTERM (exit {exit_code}):\n{logs(podman, name)}"
    podman.run("rm", name)


def image_inspect(podman: offline.Podman) -> dict[str, Any]:
    inspect: dict[str, Any] = json.loads(podman.run("image", "inspect", IMAGE).stdout)[0]
    return inspect


def test_the_image_runs_as_its_own_user_with_the_log_in_a_volume_and_a_healthcheck(
    podman: offline.Podman, image: str
) -> None:
    inspect = image_inspect(podman)
    config = inspect["Config"]
    assert config["User"] == "10001"
    assert list(config["Volumes"]) == ["/data"]
    assert "OPSGATE_DB=/data/decisions.db" in config["Env"]
    assert config["Cmd"] == ["opsgate", "serve"]
    healthcheck = inspect.get("Healthcheck", {}).get("Test", [])
    assert healthcheck[:2] == ["CMD", "python"] and "/health" in healthcheck[-1], inspect


def test_the_container_decides_and_finds_its_decision_after_a_restart(
    podman: offline.Podman, image: str, request: pytest.FixtureRequest
) -> None:
    podman.run("volume", "create", "opsgate-data")
    first = start(podman, "opsgate-first", "opsgate-data")
    request.addfinalizer(first.close)  # on failure; stop() closes it otherwise
    ready = first.get("/ready").json()
    assert ready["ready"] is True
    assert ready["opa"]["up"] is True and ready["opa"]["mode"] == "child"
    assert ready["decision_log"]["store"] == "sqlite:/data/decisions.db"
    assert podman.run("exec", "opsgate-first", "id", "-u").stdout.strip() == "10001"
    write = podman.run("exec", "opsgate-first", "touch", "/app/rules/new.yaml", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr

    decided = first.post("/decide", json=EXAMPLE_FACTS, headers=JSON)
    assert decided.status_code == 200, decided.text
    decision = decided.json()["result"]
    assert decision["execution"]["status"] == "APPROVED"
    assert decision["decision"]["decision_type"] == "OPS.DISPATCH"

    healthy(podman, "opsgate-first")
    stop(podman, "opsgate-first", first)

    second = start(podman, "opsgate-second", "opsgate-data")
    request.addfinalizer(second.close)
    found = second.get(f"/decisions/{decision['decision_id']}")
    assert found.status_code == 200, found.text
    record = found.json()["record"]
    assert record["decision_id"] == decision["decision_id"]
    assert record["execution"]["status"] == "APPROVED"
    assert record["facts"] == {**EXAMPLE_FACTS, "candidates": []}
    stop(podman, "opsgate-second", second)

    verify = podman.run(
        *production_run("opsgate-verify", "opsgate-data", free_port(), "opsgate", "log", "verify"), timeout=120
    )
    assert verify.stdout.splitlines()[0] == "1 records verified, chain intact"

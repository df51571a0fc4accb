"""docs/executors.md's "Try it" works as pasted: the example executor started with the documented
command, the service with the documented variables and examples/executors.yaml, the curl commands run
by bash (only the ports are the test's own), and what they print is what the page says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REGO_DIR, ROOT, RULES_DIR
from tests.e2e.server import Server, free_port

PAGE = ROOT / "docs" / "executors.md"


def blocks() -> list[str]:
    """The ```sh blocks of the page's "Try it" section, in order."""
    section = PAGE.read_text(encoding="utf-8").split("## Try it", 1)[1]
    return re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)


def bash(script: str, url: str, **env: str) -> str:
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("localhost:8080", url.removeprefix("http://"))],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_documented_executor_example_runs_as_pasted(tmp_path: Path, opa_bin: str) -> None:
    receiver_cmd, serve_cmd, decide, show = blocks()
    port = free_port()
    assert receiver_cmd.strip().endswith("examples/executor_receiver.py --port 9090")
    words = shlex.split(receiver_cmd.replace("--port 9090", f"--port {port}"))
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    assignments = {f"{name}={value}" for name, value in env.items()}
    argv = [sys.executable if w == ".venv/bin/python" else w for w in words if w not in assignments]
    receiver = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline() == f"executor listening on http://127.0.0.1:{port}/\n"
        served = dict(word.split("=", 1) for word in shlex.split(serve_cmd) if "=" in word)
        assert (
            shlex.split(serve_cmd)[-2:] == ["make", "run"] and served["OPSGATE_EXECUTORS"] == "examples/executors.yaml"
        )
        config = tmp_path / "executors.yaml"
        config.write_text((ROOT / served["OPSGATE_EXECUTORS"]).read_text().replace(":9090/", f":{port}/"))
        server = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, **{**served, "OPSGATE_EXECUTORS": str(config)})
        decision_id = bash(decide, server.url).strip()
        line = receiver.stdout.readline()  # blocks until the action arrives
        assert line.startswith(f"done  {decision_id}:0: TRIGGER_PROCESS ")
        shown = ""
        for _ in range(100):  # the outcome is committed just after the executor answered
            shown = bash(show, server.url, ID=decision_id)
            if shown.startswith("SUCCEEDED DELIVERED\n"):
                break
        assert shown.splitlines() == [
            "SUCCEEDED DELIVERED",
            'opsgate_executor_actions{state="PENDING"} 0.0',
            'opsgate_executor_actions{state="DELIVERED"} 1.0',
            'opsgate_executor_actions{state="DEAD"} 0.0',
        ]
    finally:
        if server is not None:
            server.stop()
        receiver.terminate()
        receiver.wait(10)
        if receiver.stdout is not None:
            receiver.stdout.close()

"""docs/evaluate.md's examples, run as pasted (curl, jq, `opsgate log verify`) against a real `opsgate serve`
with the shipped rules and a fresh log, each answer holding what the page shows after it (abridged)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tests.conftest import REGO_DIR, ROOT, RULES_DIR
from tests.e2e.server import Server

PAGE = ROOT / "docs" / "evaluate.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str, str]]:
    """Each ```sh block with the block after it, the ```json or ```text that shows its answer."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(PAGE.read_text(encoding="utf-8"))]
    pairs = [(blocks[i][1], *blocks[i + 1]) for i, (kind, _) in enumerate(blocks) if kind == "sh"]
    assert all(kind in ("json", "text") for _, kind, _ in pairs), "a command without its answer"
    return pairs


def holds(shown: Any, actual: Any, where: str = "$") -> None:
    """Everything ``shown`` has, ``actual`` has too (objects may have more keys; lists match item by item)."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in shown.items():
            assert key in actual, f"{where}: no {key!r} in {sorted(actual)}"
            holds(value, actual[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), f"{where}: {actual!r} vs {shown!r}"
        for index, (item, got) in enumerate(zip(shown, actual, strict=True)):
            holds(item, got, f"{where}[{index}]")
    else:
        assert actual == shown, f"{where}: {actual!r}, the page shows {shown!r}"


def test_the_page_has_the_examples_it_describes() -> None:
    commands = [command for command, _, _ in examples()]
    assert len(commands) == 8
    assert sum("/v1/policy/evaluate" in command for command in commands) == 5
    assert all("http://127.0.0.1:8080" in command for command in commands[:-1])


def test_every_example_answers_as_the_page_shows(start_server: Callable[..., Server], opa_bin: str) -> None:
    server = start_server(RULES_DIR, REGO_DIR)
    environ = {**os.environ, "OPSGATE_OPA_BIN": opa_bin}
    for command, kind, shown in examples():
        script = (
            command.replace("http://127.0.0.1:8080", server.url)
            .replace(".venv/bin/opsgate", f"{sys.executable} -m service")
            .replace("var/decisions.db", server.db)
        )
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=environ,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert run.returncode == 0, f"{command}\n{run.stderr}"
        if kind == "json":
            holds(json.loads(shown), json.loads(run.stdout))
        else:
            assert run.stdout == shown

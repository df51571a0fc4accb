"""docs/context.md is what opsgate does: its curl examples, run as pasted (only the ports differ) against a
real ``opsgate serve`` of the example ruleset and the example context server, answer as the page shows;
the example ruleset is the shipped ops with the documented block; the check example reports as shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.authoring.rulesets import parse_ruleset
from service.errors import RulesetInvalid
from tests.conftest import REGO_DIR, ROOT, RULES_DIR
from tests.e2e.server import Server, free_port

PAGE = ROOT / "docs" / "context.md"
EXAMPLE_RULES = ROOT / "examples" / "context" / "rules"
VARYING = {"fetched_at": str, "age_ms": float}  # differ from one run to the next: their type is checked


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.S | re.M)


def curl_examples() -> list[tuple[str, Any]]:
    """Each ```sh block holding a curl command, with the ```json block that follows it."""
    text = PAGE.read_text(encoding="utf-8")
    found = re.findall(r"^```sh\n(curl .*?)^```\n.*?^```json\n(.*?)^```", text, re.S | re.M)
    return [(command.strip(), json.loads(shown)) for command, shown in found]


def assert_shown(shown: Any, actual: Any, path: str = "$") -> None:
    """Everything ``shown`` holds is in ``actual`` (the page shortens answers), equal but for VARYING."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), path
        for key, value in shown.items():
            assert key in actual, f"{path}.{key} is not in the answer"
            if key in VARYING:
                assert isinstance(actual[key], VARYING[key]), f"{path}.{key}"
            else:
                assert_shown(value, actual[key], f"{path}.{key}")
    else:
        assert shown == actual, path


@pytest.fixture
def context_source() -> Iterator[int]:
    port = free_port()
    args = [sys.executable, "examples/context_server.py", "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"context source on http://127.0.0.1:{port}"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_curl_examples_answer_as_the_page_shows(tmp_path: Path, opa_bin: str, context_source: int) -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert ".venv/bin/python examples/context_server.py\n" in page
    assert "OPSGATE_RULES_DIR=examples/context/rules make run\n" in page
    rules = tmp_path / "rules"
    rules.mkdir()
    ruleset = (EXAMPLE_RULES / "ops.yaml").read_text(encoding="utf-8")
    (rules / "ops.yaml").write_text(ruleset.replace("127.0.0.1:9000", f"127.0.0.1:{context_source}"))
    server = Server(tmp_path, rules, REGO_DIR, opa_bin)
    try:
        examples = curl_examples()
        assert len(examples) == 4
        for command, shown in examples:
            ran = subprocess.run(
                ["bash", "-c", command.replace("http://127.0.0.1:8080", server.url)],
                cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            expected = json.loads(json.dumps(shown).replace("127.0.0.1:9000", f"127.0.0.1:{context_source}"))
            assert_shown(expected, json.loads(ran.stdout))
    finally:
        server.stop()


def test_the_example_ruleset_is_the_shipped_ops_with_the_documented_block() -> None:
    documented = blocks("yaml")[0]
    assert documented.startswith("context:\n  history: {http:")
    comment = "# Where a request that leaves `history` out gets it from (docs/context.md).\n"
    shipped = (RULES_DIR / "ops.yaml").read_text(encoding="utf-8")
    assert (EXAMPLE_RULES / "ops.yaml").read_text(encoding="utf-8") == f"{shipped}\n{comment}{documented}"


def test_the_bad_block_is_reported_as_the_page_shows() -> None:
    bad, reported = blocks("yaml")[1], blocks("text")[0]
    shipped = (RULES_DIR / "ops.yaml").read_text(encoding="utf-8")
    with pytest.raises(RulesetInvalid) as raised:
        parse_ruleset(f"{shipped}\n{bad}".encode(), "rules/ops.yaml", [])
    # the page's line numbers are those of today's rules/ops.yaml: compare them from the block's first line
    block_line = shipped.count("\n") + 2

    def relative(line: str) -> str:
        return re.sub(r"^rules/ops\.yaml:(\d+):", lambda m: f"+{int(m.group(1)) - block_line}:", line)

    shown_first = int(reported.split(":")[1])
    page_lines = [re.sub(r"^rules/ops\.yaml:(\d+):", lambda m: f"+{int(m.group(1)) - shown_first + 1}:", line)
                  for line in reported.strip().splitlines()]  # fmt: skip
    assert [relative(str(p)) for p in raised.value.problems] == page_lines

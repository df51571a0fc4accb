"""The examples the docs show are what opsgate really does: `opsgate decide examples/ops-facts.json`
answers as the README's first decision shows, and the OPA `input` document that docs/authoring.md
shows for those facts is the one opsgate sends (read back from the real OPA by a probe policy)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from service import bootstrap
from service.settings import Settings
from tests.conftest import OPA_TIMEOUT_MS, ROOT, opsgate

FACTS = ROOT / "examples" / "ops-facts.json"
HASH = re.compile(r"[0-9a-f]{64}")

# A policy that denies every ops proposal with the input document OPA received as its message.
PROBE = """# METADATA
# title: Input probe
# description: Denies every proposal, with the input document as the message.
package guardrails.ops.input_probe

import data.guardrails.lib.result

# METADATA
# title: The input
# description: The input document OPA received, as JSON.
# custom:
#   id: INPUT-PROBE
#   severity: low
deny contains result.fail(rego.metadata.chain(), json.marshal(input), null)
"""


def json_block_after(page: Path, marker: str) -> Any:
    """The first ```json block after ``marker`` in ``page``."""
    text = page.read_text(encoding="utf-8")
    found = re.search(re.escape(marker) + r".*?^```json\n(.*?)^```", text, re.S | re.M)
    assert found, f"{page.name} has no JSON block after {marker!r}"
    return json.loads(found.group(1))


def test_the_example_facts_file_decides_as_the_readme_shows(tmp_path: Path, opa_bin: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "-d @examples/ops-facts.json" in readme and "opsgate decide examples/ops-facts.json" in readme
    environ = {**os.environ, "OPSGATE_OPA_TIMEOUT_MS": str(OPA_TIMEOUT_MS)}
    run = opsgate("decide", "examples/ops-facts.json", "--db", str(tmp_path / "d.db"), opa_bin=opa_bin, env=environ)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    shown = json_block_after(ROOT / "README.md", "## First decision")
    for part in (answer, shown):  # what differs from one run (and one version of the files) to the next
        result = part["result"]
        assert HASH.fullmatch(result["explanation"]["ruleset"]["version"])
        assert HASH.fullmatch(result["explanation"]["guardrails"]["revision"])
        assert result["explanation"]["ruleset"]["version"] != result["explanation"]["guardrails"]["revision"]
        for key in ("run_id", "decision_id"):
            del result[key]
        del result["explanation"]["ruleset"]["version"], result["explanation"]["guardrails"]["revision"]
    assert answer == shown
    assert answer["result"]["decision"]["decision_type"] == "OPS.DISPATCH"
    assert answer["result"]["execution"]["status"] == "APPROVED"


def test_the_documented_opa_input_is_what_opsgate_sends(copied_dirs: tuple[Path, Path], opa_bin: str) -> None:
    rules, rego = copied_dirs
    probe = rego / "guardrails" / "ops" / "input_probe"
    probe.mkdir()
    (probe / "input_probe.rego").write_text(PROBE)
    settings = Settings(
        db=str(rules.parent / "d.db"), rules_dir=rules, rego_dir=rego, opa_bin=opa_bin, opa_timeout_ms=OPA_TIMEOUT_MS
    )

    async def decide() -> str:
        running = await bootstrap.start(settings)
        try:
            service = running.runtime.service
            ruleset = service.catalog.get("ops")
            response = await service.decide_facts(ruleset, ruleset.decoder.decode_json(FACTS.read_bytes()), "docs")
            [message] = [v.message for v in response.result.explanation.guardrails.violations if v.id == "INPUT-PROBE"]
            return message
        finally:
            await running.close()

    sent = json.loads(asyncio.run(decide()))
    documented = json_block_after(ROOT / "docs" / "authoring.md", "#### The `input` document")
    assert HASH.fullmatch(documented["ruleset"]["version"]) and HASH.fullmatch(sent["ruleset"]["version"])
    documented["ruleset"]["version"] = sent["ruleset"]["version"]  # the probe policy is a file of the version
    assert sent == documented

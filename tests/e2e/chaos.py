"""The chaos tests' figures: each test prints its own and merges them into tests/artifacts/chaos.json."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ROOT

CHAOS_JSON = ROOT / "tests" / "artifacts" / "chaos.json"


def record_chaos(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and store them under ``name``, keeping the other tests' entries."""
    print(f"\nchaos[{name}]: " + json.dumps(figures, sort_keys=True))
    CHAOS_JSON.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = json.loads(CHAOS_JSON.read_text())
    except (OSError, ValueError):
        report = {}
    report[name] = figures
    CHAOS_JSON.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")

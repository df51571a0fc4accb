"""Shared fixtures: paths of the shipped rules and policies, and the real opa binary."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
REGO_DIR = ROOT / "rego"

EXAMPLE_FACTS = {
    "org_id": 0,
    "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": 1},
    "resource": {"id": "worker-001", "capacity": 100, "status": "available"},
    "history": {"failures": 0, "latency": 500},
}


@pytest.fixture(scope="session")
def opa_bin() -> str:
    from service.guardrails import find_opa

    return find_opa(os.environ.get("OPSGATE_OPA_BIN"))


@pytest.fixture
def copied_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of rules/ and rego/ that a test may edit."""
    rules, rego = tmp_path / "rules", tmp_path / "rego"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(REGO_DIR, rego)
    return rules, rego

"""The shape of service/ is checked, not hoped for: import contracts that fail on a forbidden import,
and modules and functions that stay small enough to read."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 40


def _lint_imports_on(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on a copy of the package at ``tree`` (with the project's own contracts)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(module: Path, line: str) -> None:
    module.write_text(f"{line}  # noqa\n" + module.read_text())


def test_the_contracts_hold_on_the_code_as_it_is(package_copy: Path) -> None:
    result = _lint_imports_on(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _contract(prefix: str) -> str:
    names = [
        c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    ]
    (name,) = [n for n in names if n.startswith(prefix)]
    return name


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("domain/decision.py", "import sqlite3", "Only adapters.store imports sqlite3"),
        ("domain/decision.py", "import yaml", "The domain is pure"),
        ("usecases/review.py", "import durable", "Only adapters.rules_engine imports durable_rules"),
        ("usecases/review.py", "import subprocess", "Only adapters.opa and the git-info helper"),
        ("domain/ruleset.py", "import litestar", "Only http (and the CLI's serve)"),
        ("domain/decision.py", "import service.usecases.review", "Layers:"),
        ("adapters/metrics.py", "import service.http.app", "Layers:"),
        ("domain/decision.py", "import service.domain.explain", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(package_copy: Path, module: str, line: str, contract: str) -> None:
    _add_import(package_copy / "service" / module, line)
    result = _lint_imports_on(package_copy)
    assert result.returncode == 1, result.stdout
    report = " ".join(result.stdout.split())  # the report wraps long contract names
    assert f"{' '.join(_contract(contract).split())} BROKEN" in report


def _sources() -> list[Path]:
    return sorted((ROOT / "service").rglob("*.py"))


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by job"


def test_no_function_is_longer_than_the_limit() -> None:
    long: dict[str, int] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"

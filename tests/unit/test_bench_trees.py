"""The benchmarks' side-by-side runs (``bench.cpu --ref``, ``bench.logpath --tree``) start a child from
this checkout that must import the other tree's package: ``python -m`` and ``-c`` put the working
directory ahead of PYTHONPATH, so the child runs inside that tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.servers import in_tree
from tests.conftest import ROOT


def test_a_child_started_from_this_checkout_imports_the_other_trees_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-tree"
    (other / "service").mkdir(parents=True)
    (other / "service" / "__init__.py").write_text('WHICH = "the other tree"\n')
    monkeypatch.chdir(ROOT)  # where the benchmarks are run from, with this checkout's own service/
    for flag, code in (("-c", "import service; print(service.WHICH)"), ("-m", "service.which")):
        if flag == "-m":
            (other / "service" / "which.py").write_text("from service import WHICH\nprint(WHICH)\n")
        run = subprocess.run(
            [sys.executable, flag, code], capture_output=True, text=True, check=True, **in_tree(other, dict(os.environ))
        )
        assert run.stdout == "the other tree\n"

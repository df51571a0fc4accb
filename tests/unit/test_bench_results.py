"""bench/run.py never overwrites an earlier result of the same day."""

from __future__ import annotations

import time
from pathlib import Path

from bench.run import result_path


def test_a_second_run_of_the_day_gets_its_own_file(tmp_path: Path) -> None:
    day = time.strftime("%Y-%m-%d")
    first = result_path(tmp_path, quick=True)
    assert first.name == f"{day}-quick.json"
    first.write_text("{}")
    second = result_path(tmp_path, quick=True)
    assert second.name == f"{day}-quick-2.json"
    second.write_text("{}")
    assert result_path(tmp_path, quick=True).name == f"{day}-quick-3.json"
    assert result_path(tmp_path, quick=False).name == f"{day}.json"

"""bench/run.py never overwrites an earlier result of the same day."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.run import result_path

DAY = "2026-11-21"


def test_a_second_run_of_the_day_gets_its_own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the day is fixed: computed from the clock, it could change between two calls at midnight
    real_strftime = time.strftime
    monkeypatch.setattr(time, "strftime", lambda text, *at: DAY if text == "%Y-%m-%d" else real_strftime(text, *at))
    first = result_path(tmp_path, quick=True)
    assert first.name == f"{DAY}-quick.json"
    first.write_text("{}")
    second = result_path(tmp_path, quick=True)
    assert second.name == f"{DAY}-quick-2.json"
    second.write_text("{}")
    assert result_path(tmp_path, quick=True).name == f"{DAY}-quick-3.json"
    assert result_path(tmp_path, quick=False).name == f"{DAY}.json"

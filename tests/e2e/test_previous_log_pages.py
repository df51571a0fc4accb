"""A decision log written by the previous code, served by ``opsgate serve``: each decision's reviewer page
opens, and the JSON API shows each record exactly as it was hashed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REGO_DIR, RULES_DIR
from tests.e2e.server import Server
from tests.integration.test_previous_log import PREVIOUS


def test_every_decision_of_a_previous_log_opens_in_the_reviewer_pages(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    db = tmp_path / "previous-main.db"
    shutil.copy(PREVIOUS, db)
    with sqlite3.connect(db) as connection:
        rows = list(
            connection.execute("SELECT decision_id, decision_type, body FROM log_entries WHERE kind = 'decision'")
        )
    running = start_server(RULES_DIR, REGO_DIR, db=str(db))
    assert len(rows) == 31
    for decision_id, decision_type, body in rows:
        page = running.client.get(f"/ui/decisions/{decision_id}")
        assert page.status_code == 200, page.text
        assert f"<h1>{decision_type} " in page.text
        shown = running.client.get(f"/decisions/{decision_id}")
        assert shown.status_code == 200, shown.text
        assert json.dumps(shown.json()["record"], separators=(",", ":"), sort_keys=True, ensure_ascii=False) == body

"""The benchmark's log-off entry (``python -m bench.logoff``): the real service, answering without recording."""

from __future__ import annotations

import json
from pathlib import Path

from bench.run import FACTS
from bench.servers import ROOT, http, start_service
from service.adapters.store import verify_log


def test_the_log_off_entry_starts_and_answers_a_decision_it_does_not_record(tmp_path: Path, opa_bin: str) -> None:
    db = str(tmp_path / "off.db")
    server = start_service("logoff", "opsgate", ROOT / "rules", ROOT / "rego", db, tmp_path, opa_bin, log_off=True)
    try:
        server.wait_ready(60)
        status, answer = http("POST", server.base + "/decide", json.dumps(FACTS).encode())
        assert status == 200, answer
        assert answer["result"]["execution"]["status"] == "APPROVED"
        status, ready = http("GET", server.base + "/ready")
        assert ready["decision_log"]["store"] == f"sqlite:{db} (OFF: python -m bench.logoff, nothing is written)"
    finally:
        server.close()
    assert verify_log(db).records == 0

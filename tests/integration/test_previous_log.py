"""A decision log written by the previous code (tests/fixtures/previous-main.db, written at e60eb32 by
tests/fixtures/make_previous_main.py) still verifies, and each of its records is read as its type and
written back to exactly the bytes that were hashed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import msgspec
import pytest

from service.domain.record import (
    ApprovalRecord,
    DecisionRecord,
    ExpiryRecord,
    OutcomeRecord,
    Record,
    StoredRecord,
    canonical,
    columns,
)
from tests.conftest import ROOT, verified

PREVIOUS = ROOT / "tests" / "fixtures" / "previous-main.db"


@pytest.fixture
def previous(tmp_path: Path) -> str:
    copy = tmp_path / "previous-main.db"
    shutil.copy(PREVIOUS, copy)
    return str(copy)


def bodies(db: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as connection:
        return list(connection.execute("SELECT kind, body FROM log_entries ORDER BY writer, seq"))


def test_a_log_written_by_the_previous_code_verifies(previous: str, opa_bin: str) -> None:
    report = verified(previous, opa_bin)
    assert "35 records verified, chain intact" in report
    assert "1 ruleset version(s) verified" in report


def test_it_holds_every_kind_of_record(previous: str) -> None:
    kinds = sorted({kind for kind, _ in bodies(previous)})
    assert kinds == ["approval", "decision", "expiry", "outcome"]
    statuses = {
        msgspec.json.decode(body)["execution"]["status"] for kind, body in bodies(previous) if kind == "decision"
    }
    assert statuses == {"APPROVED", "ESCALATED", "PENDING_APPROVAL"}


def test_every_record_decodes_to_its_type_and_encodes_back_to_the_hashed_bytes(previous: str) -> None:
    types = {"decision": DecisionRecord, "outcome": OutcomeRecord, "approval": ApprovalRecord, "expiry": ExpiryRecord}
    for kind, body in bodies(previous):
        record = msgspec.json.decode(body, type=Record)
        assert isinstance(record, types[kind])
        assert record.kind == kind
        assert canonical(record) == body


def test_the_stored_columns_are_derived_again_from_the_typed_records(previous: str) -> None:
    with sqlite3.connect(previous) as connection:
        names = [c[1] for c in connection.execute("PRAGMA table_info(log_entries)")]
        rows = [dict(zip(names, row, strict=True)) for row in connection.execute("SELECT * FROM log_entries")]
    fields = StoredRecord.__struct_fields__
    for row in rows:
        stored = StoredRecord(**{name: row[name] for name in fields})
        derived = columns(stored.record())
        for name in ("kind", "decision_id", "ruleset", "decision_type", "execution_status", "org_id"):
            assert getattr(derived, name) == getattr(stored, name)

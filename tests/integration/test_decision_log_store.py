"""The decision log's store, run the same way on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from service.adapters.store import StoreLog, open_log, verify_log
from service.domain.record import DecisionQuery, OutcomeReport, Record
from service.errors import DecisionLogError, NotFound
from tests.conftest import sql, tables
from tests.records import decided, decision_fields, executed, fired, guardrails, typed, violation


def decision(n: int, **changes: Any) -> dict[str, Any]:
    """A decision record as the pipeline writes it, as JSON fields (the store takes it typed)."""
    ruleset = {"name": "ops", "version": "v1", "file": "rules/ops.yaml"}
    record = decision_fields(f"0000000{n:05d}", f"2026-11-21T10:00:{n % 60:02d}.000000+00:00", "10.0.0.1", ruleset)
    record.update(facts={"org_id": 7, "note": "café"}, fired_rules=[fired("dispatch", True)])
    record.update(changes)
    return record


def decision_record(n: int) -> Record:
    return typed(decision(n))


def append_all(store: StoreLog, records: list[dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        return list(await asyncio.gather(*(store.records.append(typed(r)) for r in records)))

    return asyncio.run(run())


def rows(db: str) -> list[tuple[Any, ...]]:
    return sql(db, "SELECT writer, seq, opsgate_body(body), prev_hash, hash FROM log_entries ORDER BY writer, seq")


def test_each_record_is_sha256_of_prev_hash_and_its_canonical_json(log: StoreLog, log_db: str) -> None:
    for n in range(3):
        append_all(log, [decision(n)])
    stored = rows(log_db)
    assert [(w, s) for w, s, *_ in stored] == [("replica-a", 1), ("replica-a", 2), ("replica-a", 3)]
    prev = "0" * 64
    for n, (_, seq, body, prev_hash, digest) in enumerate(stored):
        record = {**decision(n), "writer": "replica-a", "seq": seq}
        expected_body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert body == expected_body
        assert prev_hash == prev
        assert digest == hashlib.sha256((prev + body).encode()).hexdigest()
        prev = digest


def test_concurrent_appends_each_get_their_own_place_in_one_chain(log: StoreLog, log_db: str) -> None:
    stored = append_all(log, [decision(n) for n in range(300)])
    assert sorted(r.seq for r in stored) == list(range(1, 301))
    assert len({r.id for r in stored}) == 300
    assert str(verify_log(log_db)).splitlines()[0] == "300 records verified, chain intact"


def test_two_processes_with_one_writer_id_still_write_one_unbroken_chain(log: StoreLog, log_db: str) -> None:
    other = open_log(log_db, "replica-a")
    try:

        async def run() -> None:
            stores = enumerate((log, other))
            await asyncio.gather(
                *(s.records.append(decision_record(n + 100 * i)) for i, s in stores for n in range(100))
            )

        asyncio.run(run())
    finally:
        other.close()
    assert str(verify_log(log_db)).splitlines()[0] == "200 records verified, chain intact"


def test_each_writer_keeps_its_own_chain_and_head(log: StoreLog, log_db: str) -> None:
    other = open_log(log_db, "replica-b")
    try:
        append_all(log, [decision(n) for n in range(3)])
        last_b = append_all(other, [decision(10 + n) for n in range(2)])[-1]
        heads = asyncio.run(log.records.heads())
    finally:
        other.close()
    assert [(h.writer, h.seq) for h in heads] == [("replica-a", 3), ("replica-b", 2)]
    assert heads[1].hash == last_b.hash
    assert str(verify_log(log_db)).splitlines()[0] == "5 records verified, chain intact (2 chains)"


TAMPERING = {
    "a field of the hashed record is edited": (
        "UPDATE log_entries SET body = replace(opsgate_body(body), 'OPS.DISPATCH', 'OPS.RETRY') WHERE seq = 3",
        "record #3 (writer replica-a, seq 3, decision 000000000002): hash",
    ),
    "an indexed column is edited": (
        "UPDATE log_entries SET execution_status = 'ESCALATED' WHERE seq = 2",
        "record #2 (writer replica-a, seq 2, decision 000000000001): column execution_status='ESCALATED'",
    ),
    "a record is deleted": (
        "DELETE FROM log_entries WHERE seq = 2",
        "record #3 (writer replica-a, seq 3, decision 000000000002): seq 3 where 2 was expected",
    ),
    "a filter index row is deleted": (
        "DELETE FROM log_fired WHERE entry_id = 2",
        "record #2 (writer replica-a, seq 2, decision 000000000001): its rows in log_fired/log_denied",
    ),
    "the first record is deleted": (
        "DELETE FROM log_entries WHERE seq = 1",
        "record #2 (writer replica-a, seq 2, decision 000000000001): seq 2 where 1 was expected",
    ),
}


@pytest.mark.parametrize("change", list(TAMPERING))
def test_verify_names_the_first_tampered_record(log: StoreLog, log_db: str, change: str) -> None:
    append_all(log, [decision(0)])
    append_all(log, [decision(1)])
    append_all(log, [decision(2)])
    append_all(log, [decision(3)])
    statement, message = TAMPERING[change]
    sql(log_db, statement)
    report = verify_log(log_db)
    assert not report.ok
    assert str(report).startswith("chain broken after ")
    assert message in str(report)


def test_verify_detects_two_records_swapped_in_order(log: StoreLog, log_db: str) -> None:
    for n in range(4):
        append_all(log, [decision(n)])
    sql(log_db, "UPDATE log_entries SET seq = -1 WHERE seq = 2")
    sql(log_db, "UPDATE log_entries SET seq = 2 WHERE seq = 3")
    sql(log_db, "UPDATE log_entries SET seq = 3 WHERE seq = -1")
    report = str(verify_log(log_db))
    assert "record #3 (writer replica-a, seq 2, decision 000000000002): prev_hash" in report
    assert report.startswith("chain broken after 1 good records")


def test_queries_filter_by_every_field_and_page_newest_first(log: StoreLog) -> None:
    denial = violation("guardrails.ops.retry_limit", "OPS-RETRY-LIMIT")
    records = [
        decision(1, created_at="2026-11-21T10:00:01.000000+00:00"),
        decision(2, created_at="2026-11-21T11:00:00.000000+00:00", caller="10.0.0.2", facts={"org_id": 8}),
        decision(
            3,
            created_at="2026-11-21T12:00:00.000000+00:00",
            decision=decided("OPS.ESCALATE", 0.95),
            execution=executed("ESCALATED"),
            fired_rules=[fired("retry-after-failure", True), fired("dispatch", False)],
            guardrails=guardrails(denial),
        ),
        decision(
            4,
            created_at="2026-11-21T13:00:00.000000+00:00",
            ruleset={"name": "billing", "version": "v9", "file": "rules/billing.yaml"},
        ),
    ]
    for record in records:
        append_all(log, [record])

    def ids(**filters: Any) -> list[str]:
        found, _ = asyncio.run(log.records.query(DecisionQuery(**filters)))
        return [r.decision_id[-1] for r in found]

    assert ids() == ["4", "3", "2", "1"]
    assert ids(since="2026-11-21T11:00:00Z", until="2026-11-21T13:00:00+00:00") == ["3", "2"]
    assert ids(since="2026-11-21T12:30:00+01:00") == ["4", "3"]  # 11:30 UTC
    assert ids(ruleset="billing") == ["4"]
    assert ids(decision_type="OPS.ESCALATE") == ["3"]
    assert ids(status="APPROVED") == ["4", "2", "1"]
    assert ids(org_id="8") == ["2"]
    assert ids(rule="retry-after-failure") == ["3"]
    assert ids(rule="dispatch") == ["4", "3", "2", "1"]
    assert ids(denied_by="OPS-RETRY-LIMIT") == ["3"]
    assert ids(denied_by="guardrails.ops.retry_limit") == ["3"]
    assert ids(caller="10.0.0.2") == ["2"]
    assert ids(caller="10.0.0.2", status="ESCALATED") == []
    first, cursor = asyncio.run(log.records.query(DecisionQuery(limit=3)))
    assert [r.decision_id[-1] for r in first] == ["4", "3", "2"] and cursor is not None
    rest, end = asyncio.run(log.records.query(DecisionQuery(limit=3, cursor=cursor)))
    assert [r.decision_id[-1] for r in rest] == ["1"] and end is None


def test_an_outcome_is_chained_and_read_back_with_its_decision(log: StoreLog, log_db: str) -> None:
    append_all(log, [decision(1)])
    outcome = {
        "kind": "outcome",
        "decision_id": "000000000001",
        "created_at": "2026-11-21T10:05:00.000000+00:00",
        "caller": "10.0.0.9",
        "outcome": {"status": "FAILED", "detail": "worker crashed"},
    }
    append_all(log, [outcome])
    entries = asyncio.run(log.records.get("000000000001"))
    assert [(e.kind, e.seq) for e in entries] == [("decision", 1), ("outcome", 2)]
    assert entries[1].record().outcome == OutcomeReport(status="FAILED", detail="worker crashed")  # type: ignore[union-attr]
    assert entries[1].prev_hash == entries[0].hash
    assert asyncio.run(log.records.get("nope")) == []
    assert str(verify_log(log_db)).splitlines()[0] == "2 records verified, chain intact"


def test_a_decision_id_is_logged_once(log: StoreLog, log_db: str) -> None:
    append_all(log, [decision(1)])
    with pytest.raises(Exception, match="decision log write failed"):
        append_all(log, [decision(1)])
    append_all(log, [decision(2)])  # the chain goes on after a refused write
    assert str(verify_log(log_db)).splitlines()[0] == "2 records verified, chain intact"


def test_versions_keep_every_file_once_and_count_their_loads(log: StoreLog, log_db: str) -> None:
    files_v1 = [("rules/ops.yaml", b"name: ops\n"), ("rego/a.rego", b"package a\n")]
    files_v2 = [("rules/ops.yaml", b"name: ops # changed\n"), ("rego/a.rego", b"package a\n")]
    git = {"commit": "abc", "author": "A <a@example.org>", "date": "2026-11-20T10:00:00+00:00", "subject": "s"}
    asyncio.run(log.versions.register_version("v1", files_v1, {"ops": "r1"}, None))
    asyncio.run(log.versions.register_version("v2", files_v2, {"ops": "r2"}, git))
    asyncio.run(log.versions.register_version("v1", files_v1, {"ops": "r1"}, None))
    versions = {v.version: v for v in asyncio.run(log.versions.versions())}
    assert (versions["v1"].loads, versions["v2"].loads) == (2, 1)
    assert versions["v1"].rulesets == {"ops": "r1"} and versions["v1"].git is None
    assert versions["v2"].git == git
    assert versions["v1"].last_loaded_at > versions["v1"].first_loaded_at
    files = asyncio.run(log.versions.version_files("v2"))
    assert [(f.path, f.content) for f in files] == [("rego/a.rego", b"package a\n"), ("rules/ops.yaml", files_v2[0][1])]
    assert files[1].sha256 == hashlib.sha256(b"name: ops # changed\n").hexdigest()
    assert sql(log_db, "SELECT count(*) FROM blobs") == [(3,)]  # rego/a.rego stored once


def test_verify_recomputes_each_stored_version_from_its_files(log: StoreLog, log_db: str) -> None:
    from service.domain.ruleset import content_hash

    files = [("rules/ops.yaml", b"name: ops\n"), ("rego/a.rego", b"package a\n")]
    version = content_hash(files)
    asyncio.run(log.versions.register_version(version, files, {"ops": "r1"}, None))
    assert str(verify_log(log_db)) == "0 records verified, chain intact\n1 ruleset version(s) verified"
    sql(log_db, "UPDATE blobs SET content = ? WHERE sha256 = ?",
        (b"name: ops # edited\n", hashlib.sha256(b"name: ops\n").hexdigest()))  # fmt: skip
    report = verify_log(log_db)
    assert not report.intact
    assert f"ruleset versions: version {version[:12]}…: rules/ops.yaml does not match its sha256" in str(report)


def test_verify_reads_only_and_says_when_there_is_no_log(log_db: str) -> None:
    with pytest.raises(NotFound, match="no decision log at"):
        verify_log(log_db)
    if log_db.startswith("postgresql://"):  # nothing was created by looking
        assert sql(log_db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()") == [
            (0,)
        ]


def test_a_read_only_log_reads_what_was_written_and_refuses_to_append(log: StoreLog, log_db: str) -> None:
    append_all(log, [decision(1), decision(2)])
    reader = open_log(log_db, "opsgate-replay", read_only=True)
    try:
        rows_read, _ = asyncio.run(reader.records.query(DecisionQuery()))
        assert [r.decision_id for r in rows_read] == ["000000000002", "000000000001"]
        with pytest.raises(DecisionLogError, match="is open read-only"):
            append_all(reader, [decision(3)])
        with pytest.raises(DecisionLogError, match="is open read-only"):
            asyncio.run(reader.sessions.revoke_session("sid", 1))
        with pytest.raises(DecisionLogError, match="is open read-only"):
            asyncio.run(reader.versions.register_version("v", [], {}, None))
        with pytest.raises(DecisionLogError):  # its connections themselves refuse to write, on either database
            asyncio.run(reader.database.read(lambda c: c.execute("DELETE FROM log_entries")))
    finally:
        reader.close()
    assert str(verify_log(log_db)).splitlines()[0] == "2 records verified, chain intact"


def test_a_read_only_log_creates_nothing_where_there_is_no_log(foreign_db: str) -> None:
    before = tables(foreign_db)
    with pytest.raises(NotFound, match="no decision log at"):
        open_log(foreign_db, "opsgate-replay", read_only=True)
    assert tables(foreign_db) == before


def test_a_cursor_of_zero_is_an_empty_page(log: StoreLog) -> None:
    append_all(log, [decision(1)])
    assert asyncio.run(log.records.query(DecisionQuery(cursor="0"))) == ([], None)


def test_the_postgresql_description_shows_neither_user_info_nor_query_parameters(pg_url: str) -> None:
    # trust authentication ignores the password; the URL still carries it as a query parameter
    user, at, host_db = pg_url.split("://", 1)[1].split("?")[0].rpartition("@")
    url = pg_url.replace(f"{user}{at}", f"{user or 'postgres'}:userinfo-secret@", 1) + "&password=query-secret"
    store = open_log(url, "replica-a")
    try:
        assert store.description == f"postgresql://{host_db}"
    finally:
        store.close()

"""The log held against its checkpoints (service.domain.attest), on hand-made chains: which uncovered
records are forged, which are merely not covered yet, and a chain nobody signed."""

from __future__ import annotations

import hashlib

from service.domain.attest import Named, attest
from service.domain.checkpoint import Checkpoint
from service.domain.record import GENESIS, StoredRecord


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chain(writer: str, times: list[str]) -> list[StoredRecord]:
    rows, prev = [], GENESIS
    for seq, at in enumerate(times, 1):
        body = f'{{"seq":{seq},"writer":"{writer}"}}'
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        rows.append(StoredRecord(seq, writer, seq, body, prev, digest, "decision", f"d{seq}", at, "c",
                                 None, None, None, None, None, None))  # fmt: skip
        prev = digest
    return rows


def two_leaf_root(rows: list[StoredRecord]) -> str:
    """MTH of the first two records, written out: SHA-256(0x01 || leaf1 || leaf2)."""
    leaves = [sha(b"\x00" + bytes.fromhex(row.hash)) for row in rows[:2]]
    return sha(b"\x01" + leaves[0] + leaves[1]).hex()


def signed(rows: list[StoredRecord], at: str, *, final: bool = False) -> Named:
    point = Checkpoint("w", 2, two_leaf_root(rows), at, "key", final=final)
    return Named(f"{at}-w-2.json", point)


T1, T2, T3, T4 = (f"2026-12-04T10:00:0{n}.000000+00:00" for n in range(1, 5))


def test_a_record_newer_than_the_last_checkpoint_of_a_running_writer_is_only_not_covered_yet() -> None:
    rows = chain("w", [T1, T1, T3])
    report = attest(rows, [signed(rows, T2)])
    assert (report.problems, report.covered) == ([], 2)
    assert report.notes == ["writer w: records 3..3 are newer than its last checkpoint (not yet covered)"]


def test_a_record_dated_before_a_checkpoint_that_does_not_cover_it_was_appended_afterwards() -> None:
    rows = chain("w", [T1, T1, T1])
    report = attest(rows, [signed(rows, T2)])
    assert report.problems == [
        "writer w: record seq 3 is dated before checkpoint 2026-12-04T10:00:02.000000+00:00-w-2.json but not "
        "covered by it: appended afterwards"
    ]


def test_a_writer_that_started_again_after_its_final_checkpoint_may_append() -> None:
    rows = chain("w", [T1, T1, T4])
    stopped, started = signed(rows, T2, final=True), signed(rows, T3)
    assert attest(rows, [stopped, started]).problems == []
    assert attest(rows, [stopped]).problems == [
        "writer w: records 3..3 come after its final checkpoint 2026-12-04T10:00:02.000000+00:00-w-2.json "
        "(signed as it stopped): appended by someone else"
    ]


def test_a_chain_that_no_checkpoint_covers_was_never_signed() -> None:
    rows = chain("w", [T1, T1])
    report = attest([*rows, *chain("x", [T1])], [signed(rows, T2)])
    assert report.problems == ["writer x: 1 records and no checkpoint: never signed"]

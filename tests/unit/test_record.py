"""The typed log record's canonical form: the keys each kind has always had, absent where unset (pure)."""

from __future__ import annotations

import msgspec

from service.domain.record import (
    ApprovalAnswer,
    ApprovalRecord,
    OutcomeRecord,
    OutcomeReport,
    Record,
    canonical,
    columns,
)


def test_an_outcome_is_written_with_sorted_keys_and_no_chain_place_until_the_store_sets_it() -> None:
    outcome = OutcomeRecord(decision_id="d1", created_at="t", caller="w1", outcome=OutcomeReport("FAILED", "crashed"))
    assert canonical(outcome) == (
        '{"caller":"w1","created_at":"t","decision_id":"d1","kind":"outcome",'
        '"outcome":{"detail":"crashed","status":"FAILED"}}'
    )
    chained = msgspec.structs.replace(outcome, writer="replica-a", seq=7)
    assert canonical(chained).endswith(',"seq":7,"writer":"replica-a"}')


def test_an_approval_without_expiry_terms_writes_null_and_reads_back_as_its_kind() -> None:
    approval = ApprovalRecord(decision_id="d1", created_at="t", caller="bob",
                              approval=ApprovalAnswer("EXECUTED", "ok", "alice", None))  # fmt: skip
    body = canonical(approval)
    assert '"expires_at":null' in body
    read = msgspec.json.decode(body, type=Record)
    assert read == approval and read.kind == "approval"
    assert columns(read).kind == "approval" and columns(read).ruleset is None

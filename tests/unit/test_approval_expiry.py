"""A ruleset's approval_expiry_s param: how long its decisions wait for a person (default one hour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.authoring.rulesets import load_ruleset
from service.domain.approval import approval_expires_at
from service.domain.record import DecisionRecord
from service.domain.ruleset import approval_expiry_s
from service.errors import RulesetInvalid
from tests.records import decision_fields, typed

PARAMS = "params:\n  max_attempts: 3\n"


def load_with(tmp_path: Path, ops_text: str, line: str) -> object:
    assert ops_text.count(PARAMS) == 1
    path = tmp_path / "ops.yaml"
    path.write_text(ops_text.replace(PARAMS, PARAMS + line), encoding="utf-8")
    return load_ruleset(path, "rules/ops.yaml", [])


def test_without_the_param_a_decision_waits_one_hour() -> None:
    assert approval_expiry_s({"max_attempts": 3}) == 3600.0


def test_the_param_sets_the_wait_in_seconds(tmp_path: Path, ops_text: str) -> None:
    ruleset = load_with(tmp_path, ops_text, "  approval_expiry_s: 90\n")
    assert approval_expiry_s(ruleset.params) == 90.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["0", "-5", '"an hour"', "true", "null"])
def test_an_expiry_that_is_not_a_positive_number_is_a_located_problem(
    tmp_path: Path, ops_text: str, value: str
) -> None:
    with pytest.raises(RulesetInvalid) as caught:
        load_with(tmp_path, ops_text, f"  approval_expiry_s: {value}\n")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.path) == ("rules/ops.yaml", 14, "params.approval_expiry_s")
    assert problem.reason == "approval_expiry_s is the seconds a decision waits for approval: a number greater than 0"


@pytest.mark.parametrize("value", ["1.0e+12", ".inf", "315360001"])
def test_an_expiry_past_ten_years_is_a_located_problem(tmp_path: Path, ops_text: str, value: str) -> None:
    # decided with it, a decision's expires_at would be past year 9999 (or infinite): a 500 at each decision
    with pytest.raises(RulesetInvalid) as caught:
        load_with(tmp_path, ops_text, f"  approval_expiry_s: {value}\n")
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (14, "params.approval_expiry_s")
    assert problem.reason == "approval_expiry_s is at most 315360000 seconds (ten years)"


def test_an_expiry_of_ten_years_is_accepted(tmp_path: Path, ops_text: str) -> None:
    ruleset = load_with(tmp_path, ops_text, "  approval_expiry_s: 315360000\n")
    assert approval_expiry_s(ruleset.params) == 315360000.0  # type: ignore[attr-defined]


def pending(created_at: str, **changes: Any) -> DecisionRecord:
    fields = decision_fields("000000000001", created_at, "10.0.0.1", {"name": "ops", "version": "v1", "file": "f"})
    record = typed({**fields, **changes})
    assert isinstance(record, DecisionRecord)
    return record


def test_a_pending_record_expires_when_its_approval_terms_say_in_the_logs_time_format() -> None:
    terms = {"expiry_s": 600.0, "expires_at": "2026-11-21T10:10:00Z"}
    record = pending("2026-11-21T10:00:00.000000+00:00", approval=terms)
    assert approval_expires_at(record) == "2026-11-21T10:10:00.000000+00:00"


def test_a_pending_record_without_approval_terms_expires_an_hour_after_it_was_decided() -> None:
    record = pending("2026-11-21T10:00:07.000000+00:00")  # no approval terms: not written by the decision service
    assert approval_expires_at(record) == "2026-11-21T11:00:07.000000+00:00"

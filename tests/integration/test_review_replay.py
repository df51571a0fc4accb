"""POST /decisions/{id}/replay's service (real engine, OPA and log): a logged decision re-decided
under the version served now, and the two reasons it cannot be."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from service import bootstrap
from service.errors import Conflict
from service.settings import Settings
from tests.conftest import EXAMPLE_FACTS, OPA_TIMEOUT_MS, copy_ops_only, decide_in_process

FIRST_ATTEMPT = {**EXAMPLE_FACTS, "process": {**EXAMPLE_FACTS["process"], "attempts": 0}}


def logged(tmp_path: Path, opa_bin: str) -> tuple[str, str]:
    """A log holding one ops decision of a first attempt; its database and decision id."""
    db = str(tmp_path / "decisions.db")
    rules, rego = copy_ops_only(tmp_path / "logged")
    settings = Settings(
        db=db, writer_id="replica-1", rules_dir=rules, rego_dir=rego, opa_bin=opa_bin, opa_timeout_ms=OPA_TIMEOUT_MS
    )
    [decision_id] = decide_in_process(settings, [(FIRST_ATTEMPT, "review-test")])
    return db, decision_id


def replay_under(db: str, rules: Path, rego: Path, opa_bin: str, decision_id: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        settings = Settings(
            db=db, writer_id="replica-2", rules_dir=rules, rego_dir=rego, opa_bin=opa_bin, opa_timeout_ms=OPA_TIMEOUT_MS
        )
        running = await bootstrap.start(settings)
        try:
            return await running.runtime.review.replay(decision_id)
        finally:
            await running.close()

    return asyncio.run(run())


def test_the_same_version_replays_the_decision_unchanged(tmp_path: Path, opa_bin: str) -> None:
    db, decision_id = logged(tmp_path, opa_bin)
    rules, rego = copy_ops_only(tmp_path / "same")
    replay = replay_under(db, rules, rego, opa_bin, decision_id)
    assert (replay["changed"], replay["differences"]) == (False, [])
    assert replay["after"]["decision.decision_type"] == "OPS.DISPATCH"
    assert replay["after"]["ruleset_version"] == replay["before"]["ruleset_version"]


def test_facts_that_no_longer_fit_the_served_schema_are_a_conflict_naming_the_field(
    tmp_path: Path, opa_bin: str
) -> None:
    db, decision_id = logged(tmp_path, opa_bin)
    rules, rego = copy_ops_only(tmp_path / "schema")
    ops = rules / "ops.yaml"
    ops.write_text(ops.read_text().replace("attempts: {type: int, ge: 0}", "attempts: {type: int, ge: 1}"))
    with pytest.raises(Conflict) as raised:
        replay_under(db, rules, rego, opa_bin, decision_id)
    assert raised.value.message == (
        "the stored facts do not fit the current ruleset's schema: invalid facts: process.attempts: Expected `int` >= 1"
    )
    assert [problem.path for problem in raised.value.problems] == ["process.attempts"]


def test_a_ruleset_no_longer_served_is_a_conflict(tmp_path: Path, opa_bin: str) -> None:
    db, decision_id = logged(tmp_path, opa_bin)
    rules, rego = copy_ops_only(tmp_path / "renamed")
    text = (rules / "ops.yaml").read_text().replace("name: ops\n", "name: ops2\n")
    (rules / "ops.yaml").unlink()
    (rules / "ops2.yaml").write_text(text)
    with pytest.raises(Conflict) as raised:
        replay_under(db, rules, rego, opa_bin, decision_id)
    assert raised.value.message == "ruleset 'ops' is no longer served; the decision cannot be replayed"

"""Acceptance: opsgate replay re-decides 1,000 logged decisions (real engine, real OPA, real log)
under a candidate with max_attempts 4, and its flip matrix matches a count made by hand."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import OPA_TIMEOUT_MS, PG_SERVER, copy_ops_only, decide_in_process, opsgate, tables

DISPATCH, RETRY, REASSIGN, ESCALATE = "OPS.DISPATCH", "OPS.RETRY", "OPS.REASSIGN", "OPS.ESCALATE"
STATUSES = ("available", "available", "overloaded")
COUNT = 1000


def facts_for(n: int) -> dict[str, Any]:
    """Deterministic facts: attempts 0-4, failures 0-3, some resources overloaded or full."""
    return {
        "org_id": n % 3,
        "process": {"type": "ORDER_PROCESSING", "sla": 3600, "attempts": n % 5},
        "resource": {"id": "worker-001", "capacity": 0 if n % 11 == 0 else 100, "status": STATUSES[(n // 5) % 3]},
        "history": {"failures": (n // 15) % 4, "latency": 500},
        "candidates": [{"id": "worker-002", "capacity": 50, "status": "available"}],
    }


def expected(facts: dict[str, Any], max_attempts: int, retry_limit: int) -> str:
    """rules/ops.yaml and the ops guardrails, by hand; confidences in hundredths."""
    attempts, failures = facts["process"]["attempts"], facts["history"]["failures"]
    resource = facts["resource"]
    if attempts >= max_attempts or failures >= 3:  # escalate-attempts, escalate-failures
        return ESCALATE
    if resource["status"] != "available" or resource["capacity"] == 0:  # reassign-unavailable -> worker-002
        return REASSIGN if 80 - 5 * attempts - 10 * failures >= 60 else ESCALATE  # OPS-MIN-CONFIDENCE
    if failures > 0:  # retry-after-failure
        if attempts >= retry_limit:  # OPS-RETRY-LIMIT (its own limit in rego)
            return ESCALATE
        return RETRY if 85 - 5 * attempts - 10 * failures >= 60 else ESCALATE  # OPS-MIN-CONFIDENCE
    return DISPATCH  # confidence 90 - 5 * attempts >= 70


def hand_matrix(retry_limit: int, limit: int = COUNT) -> dict[str, dict[str, int]]:
    # the log is replayed newest first: --limit N takes the last N decided
    pairs = Counter(
        (expected(facts_for(n), 3, 3), expected(facts_for(n), 4, retry_limit)) for n in range(COUNT - limit, COUNT)
    )
    matrix: dict[str, dict[str, int]] = {}
    for (old, new), count in sorted(pairs.items()):
        matrix.setdefault(old, {})[new] = count
    return matrix


def log_decisions(db: str, opa_bin: str, rules: Path, rego: Path) -> list[str]:
    settings = Settings(db=db, writer_id="replica-1", rules_dir=rules, rego_dir=rego, opa_bin=opa_bin,
                        opa_timeout_ms=OPA_TIMEOUT_MS)  # fmt: skip
    return decide_in_process(settings, ((facts_for(n), "replay-test") for n in range(COUNT)))


class Logged:
    def __init__(self, db: str, ids: list[str], root: Path) -> None:
        self.db, self.ids, self.root = db, ids, root

    def candidate(self, name: str, retry_limit: int = 3, edits: dict[str, str] | None = None) -> tuple[Path, Path]:
        """A copy of the logged version with max_attempts 4 (and the retry guardrail's limit), plus edits."""
        rules, rego = copy_ops_only(self.root / name)
        ops = rules / "ops.yaml"
        ops.write_text(ops.read_text().replace("max_attempts: 3", "max_attempts: 4"))
        policy = rego / "guardrails" / "ops" / "retry_limit" / "retry_limit.rego"
        policy.write_text(policy.read_text().replace("_max_attempts := 3", f"_max_attempts := {retry_limit}"))
        for old, new in (edits or {}).items():
            ops.write_text(ops.read_text().replace(old, new))
        return rules, rego


@pytest.fixture(scope="module")
def sqlite_log(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Logged:
    root = tmp_path_factory.mktemp("replay")
    db = str(root / "decisions.db")
    return Logged(db, log_decisions(db, opa_bin, *copy_ops_only(root / "live")), root)


@pytest.fixture(scope="module")
def postgresql_log(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Logged]:
    import psycopg

    root = tmp_path_factory.mktemp("replay-pg")
    schema = f"opsgate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    db = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    yield Logged(db, log_decisions(db, opa_bin, *copy_ops_only(root / "live")), root)
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def replay_json(logged: Logged, rules: Path, rego: Path, opa_bin: str, *extra: str) -> dict[str, Any]:
    args = ("--db", logged.db, "--candidate-rules", str(rules), "--candidate-rego", str(rego), "--format", "json")
    result = opsgate("replay", *args, *extra, opa_bin=opa_bin)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_max_attempts_4_flips_third_attempts_from_escalate_as_counted_by_hand(
    store: str, request: pytest.FixtureRequest, opa_bin: str
) -> None:
    logged: Logged = request.getfixturevalue(f"{store}_log")
    rules, rego = logged.candidate("rules-only")  # the retry guardrail keeps its own limit of 3
    report = replay_json(logged, rules, rego, opa_bin)
    assert report["matrix"] == hand_matrix(retry_limit=3)
    # the hand count written out: third attempts that dispatch or reassign now; retries stay denied
    assert report["matrix"][ESCALATE] == {ESCALATE: 561, DISPATCH: 31, REASSIGN: 20}
    assert (report["replayed"], report["changed"], report["not_replayable"]) == (1000, 51, 0)
    assert report["rulesets"] == {"ops": [DISPATCH, ESCALATE, REASSIGN, RETRY]}  # the types of each ruleset's block
    flips = {(f["old"], f["new"]): f for f in report["flips"]}
    assert {k: f["count"] for k, f in flips.items()} == {(ESCALATE, DISPATCH): 31, (ESCALATE, REASSIGN): 20}
    sample = flips[(ESCALATE, DISPATCH)]["samples"][0]
    assert len(flips[(ESCALATE, DISPATCH)]["samples"]) == 5
    assert sample["old"] == {"decision_type": ESCALATE, "rules": ["escalate-attempts"], "violations": []}
    assert sample["new"] == {"decision_type": DISPATCH, "rules": ["dispatch"], "violations": []}
    assert sample["decision_id"] in logged.ids


def test_raising_the_retry_guardrail_too_turns_third_attempt_escalations_into_retries(
    sqlite_log: Logged, opa_bin: str
) -> None:
    rules, rego = sqlite_log.candidate("with-rego", retry_limit=4)
    report = replay_json(sqlite_log, rules, rego, opa_bin, "--samples", "2")
    assert report["matrix"] == hand_matrix(retry_limit=4)
    assert report["matrix"][ESCALATE] == {ESCALATE: 531, DISPATCH: 31, REASSIGN: 20, RETRY: 30}
    retry = next(f for f in report["flips"] if (f["old"], f["new"]) == (ESCALATE, RETRY))
    assert retry["count"] == 30 and len(retry["samples"]) == 2
    assert retry["samples"][0]["new"]["rules"] == ["retry-after-failure"]


def test_since_and_until_select_by_time(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("times")
    future = replay_json(sqlite_log, rules, rego, opa_bin, "--since", "2999-01-01T00:00:00Z")
    assert (future["replayed"], future["matrix"], future["flips"]) == (0, {}, [])
    past = replay_json(sqlite_log, rules, rego, opa_bin, "--until", "2999-01-01T00:00:00Z", "--limit", "5")
    assert past["replayed"] == 5


def test_limit_replays_only_the_newest_decisions(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("limited")
    report = replay_json(sqlite_log, rules, rego, opa_bin, "--limit", "137")
    assert report["replayed"] == 137
    assert report["matrix"] == hand_matrix(retry_limit=3, limit=137)


def test_text_output_prints_the_matrix_the_flips_and_their_samples(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("text")
    args = ("--db", sqlite_log.db, "--candidate-rules", str(rules), "--candidate-rego", str(rego))
    result = opsgate("replay", *args, "--samples", "1", opa_bin=opa_bin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "replayed 1000, changed 51, not replayable 0" in lines
    assert lines[lines.index("ops: replayed 1000, changed 51") + 1].startswith("old \\ new")  # one block per ruleset
    header = next(line for line in lines if line.startswith("old \\ new"))
    assert header.split()[3:] == [DISPATCH, ESCALATE, REASSIGN, RETRY]
    escalate_row = next(line for line in lines if line.startswith(ESCALATE + " "))
    assert escalate_row.split() == [ESCALATE, "31", "561", "20", "0"]
    at = lines.index(f"{ESCALATE} -> {DISPATCH}: 31")
    assert re.fullmatch(r"  \S+  rules escalate-attempts -> dispatch  violations - -> -", lines[at + 1])


def test_records_that_no_longer_fit_the_candidate_are_counted_apart_with_their_reason(
    sqlite_log: Logged, opa_bin: str
) -> None:
    # attempts must now be at least 1: the 200 logged first attempts (attempts 0) no longer fit
    rules, rego = sqlite_log.candidate("schema", edits={"attempts: {type: int, ge: 0}": "attempts: {type: int, ge: 1}"})
    report = replay_json(sqlite_log, rules, rego, opa_bin)
    assert (report["replayed"], report["not_replayable"]) == (800, 200)
    [skipped] = report["not_replayable_reasons"]
    assert skipped["count"] == 200
    assert skipped["reason"] == (
        "facts do not fit the candidate's schema: invalid facts: process.attempts: Expected `int` >= 1"
    )
    assert len(skipped["samples"]) == 5


def test_a_ruleset_missing_from_the_candidate_is_not_replayable(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("renamed")
    (rules / "ops.yaml").rename(rules / "ops2.yaml")
    text = (rules / "ops2.yaml").read_text()
    (rules / "ops2.yaml").write_text(text.replace("name: ops\n", "name: ops2\n"))
    report = replay_json(sqlite_log, rules, rego, opa_bin, "--limit", "10")
    assert (report["replayed"], report["not_replayable"], report["matrix"]) == (0, 10, {})
    assert report["not_replayable_reasons"][0]["reason"] == "ruleset 'ops' is not in the candidate"


def test_a_broken_candidate_exits_2_with_file_line_column(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("broken")
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace("when: history.failures > 0", "when: history.failures >> 0"))
    args = ("--db", sqlite_log.db, "--candidate-rules", str(rules), "--candidate-rego", str(rego))
    result = opsgate("replay", *args, opa_bin=opa_bin)
    assert result.returncode == 2
    line = text[: text.index("when: history.failures > 0")].count("\n") + 1
    assert f"rules/ops.yaml:{line}:29: error: rules[3].when: expected a value, found '>'" in result.stderr
    assert result.stdout == ""


def test_a_broken_candidate_policy_exits_2_with_its_location(sqlite_log: Logged, opa_bin: str) -> None:
    rules, rego = sqlite_log.candidate("broken-rego")
    policy = rego / "guardrails" / "ops" / "retry_limit" / "retry_limit.rego"
    policy.write_text(policy.read_text().replace("attempts >= _max_attempts", "attempts >= _undefined_limit"))
    args = ("--db", sqlite_log.db, "--candidate-rules", str(rules), "--candidate-rego", str(rego))
    result = opsgate("replay", *args, opa_bin=opa_bin)
    assert result.returncode == 2
    line = next(i for i, text in enumerate(policy.read_text().splitlines(), 1) if "_undefined_limit" in text)
    assert f"rego/guardrails/ops/retry_limit/retry_limit.rego:{line}:" in result.stderr


def test_usage_errors_exit_2(sqlite_log: Logged, opa_bin: str, tmp_path: Path) -> None:
    rules, rego = sqlite_log.candidate("usage")
    args = ("--candidate-rules", str(rules), "--candidate-rego", str(rego))
    missing = opsgate("replay", "--db", str(tmp_path / "none.db"), *args, opa_bin=opa_bin)
    assert (missing.returncode, missing.stderr.strip()) == (2, f"opsgate: no decision log at {tmp_path / 'none.db'}")
    bad_time = opsgate("replay", "--db", sqlite_log.db, *args, "--since", "yesterday", opa_bin=opa_bin)
    assert bad_time.returncode == 2
    assert "--since 'yesterday' is not an RFC 3339 time" in bad_time.stderr
    bad_limit = opsgate("replay", "--db", sqlite_log.db, *args, "--limit", "0", opa_bin=opa_bin)
    assert bad_limit.returncode == 2 and "0 is not a positive number" in bad_limit.stderr


def failed_closed_log(tmp_path: Path, opa_bin: str) -> tuple[str, str, tuple[Path, Path]]:
    """A log holding one decision made while OPA was unreachable (escalated, no guardrail verdict)."""
    rules, rego = copy_ops_only(tmp_path / "live")
    db = str(tmp_path / "decisions.db")
    decided = opsgate("decide", "-", "--rules-dir", str(rules), "--rego-dir", str(rego), "--db", db,
                      "--opa-url", "http://127.0.0.1:1", stdin=json.dumps(facts_for(1)), opa_bin=opa_bin)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    result = json.loads(decided.stdout)["result"]
    assert result["decision"]["decision_type"] == ESCALATE  # dispatch proposed, but no verdict: failed closed
    assert result["explanation"]["guardrails"]["available"] is False
    return db, result["decision_id"], (rules, rego)


def test_a_decision_that_failed_closed_is_not_replayable_rather_than_a_flip(tmp_path: Path, opa_bin: str) -> None:
    db, decision_id, (rules, rego) = failed_closed_log(tmp_path, opa_bin)
    args = ("--db", db, "--candidate-rules", str(rules), "--candidate-rego", str(rego), "--format", "json")
    result = opsgate("replay", *args, opa_bin=opa_bin)  # the unchanged version as candidate
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["replayed"], report["changed"], report["not_replayable"]) == (0, 0, 1)
    assert report["flips"] == [] and report["matrix"] == {}
    assert report["not_replayable_reasons"] == [
        {"reason": "the logged decision had no guardrail verdict", "count": 1, "samples": [decision_id]}
    ]


def test_a_database_without_a_decision_log_exits_2_and_is_left_as_it_was(
    foreign_db: str, opa_bin: str, tmp_path: Path
) -> None:
    rules, rego = copy_ops_only(tmp_path / "candidate")
    before = tables(foreign_db)
    content = Path(foreign_db).read_bytes() if "://" not in foreign_db else b""
    result = opsgate("replay", "--db", foreign_db, "--candidate-rules", str(rules), "--candidate-rego", str(rego),
                     opa_bin=opa_bin)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == f"opsgate: no decision log at {foreign_db} (no log_entries table)"
    assert tables(foreign_db) == before
    if "://" not in foreign_db:
        assert Path(foreign_db).read_bytes() == content  # not even the journal mode changed

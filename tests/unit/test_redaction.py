"""Redaction of ``redact:`` fact fields in the stored record (pure), the ruleset's ``redact:`` key,
and the redaction key's configuration.  The expected hashes were computed with openssl::

    printf '"alice@example.org"' | openssl dgst -sha256 -hmac kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
    printf '42' | openssl dgst -sha256 -hmac kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.adapters.redaction_key import load_redaction_key, required_redaction_key
from service.authoring.rulesets import parse_ruleset
from service.domain.decision import (
    Decision,
    Execution,
    FiredRule,
    GuardrailsReport,
    Proposal,
    RulesetRef,
    Violation,
    WhyNot,
)
from service.domain.record import DecisionRecord, canonical, columns
from service.domain.redaction import (
    RedactionKey,
    redact_record,
    redacted_paths,
    redacted_reads,
    replay_facts,
)
from service.errors import RedactionKeyMissing, RulesetInvalid
from service.settings import Settings

KEY = RedactionKey(b"k" * 32, "test-key")
ALICE_HASH = "971c2f69b84891c5c8da3e83a588430ee148284ebb54e9c139c4187ce73d7a97"
FORTY_TWO_HASH = "09b9733fee8d8c0058bb9267ee6883b71d107741f7dce72efc707782121c7a49"
ALICE = "alice@example.org"
ALICE_MARK = f"[redacted:test-key:{ALICE_HASH}]"

RULESET = """\
name: notify
agent: a
description: d
owner: o
facts:
  kind: {type: str}
  customer:
    type: object
    fields:
      email: {type: str}
      score: {type: int, required: false}
      tier: {type: str}
redact: [customer.email, customer.score]
escalation: {decision: N.ESCALATE}
rules:
  - id: gold
    title: Gold
    when: customer.tier == "gold"
    then: {decision: N.SEND, confidence: 0.9, autonomy: L3}
"""


def record(facts: dict[str, Any], action: dict[str, Any], message: str, not_fired: list[WhyNot]) -> DecisionRecord:
    proposal = Proposal("N.SEND", 0.9, "NORMAL", [action], ["gold"])
    violation = Violation("guardrails.notify.x", "X-1", "deny", "X", message, "high")
    guardrails = GuardrailsReport(True, False, [violation], False, [], "rev")
    return DecisionRecord(
        decision_id="d1", created_at="t", caller="c", run_id="r", agent="a",
        ruleset=RulesetRef("notify", "v", "rules/notify.yaml"), bundle_revision="rev", facts=facts,
        fired_rules=[FiredRule("gold", "Gold", "rules/notify.yaml", 17, 0, True)], proposal=proposal,
        guardrails=guardrails, decision=Decision("N.SEND", 0.9, "NORMAL", [action]),
        execution=Execution("ESCALATED", [action]), summary=f"send to {ALICE}", error=None,
        latency_ms={"total": 1.0}, not_fired=not_fired,
    )  # fmt: skip


def test_the_stored_record_holds_the_keyed_hash_and_no_copy_of_the_value_anywhere() -> None:
    facts = {"kind": "receipt", "customer": {"email": ALICE, "score": 42, "tier": "gold"}}
    action = {"type": "SEND", "to": ALICE, "subject": f"Receipt for {ALICE}"}
    why = WhyNot(
        "basic", "Basic", "f", 20, "customer.score > 50", {"customer.score": 42}, "basic: … (customer.score = 42)"
    )
    logged = record(facts, action, f"{ALICE} is on a blocklist", [why])
    stored = redact_record(logged, ["customer.email", "customer.score"], KEY)
    assert stored.facts == {
        "kind": "receipt",
        "customer": {
            "email": {"redacted": "hmac-sha256", "key_id": "test-key", "hash": ALICE_HASH},
            "score": {"redacted": "hmac-sha256", "key_id": "test-key", "hash": FORTY_TWO_HASH},
            "tier": "gold",
        },
    }
    assert facts["customer"]["email"] == ALICE  # the caller's facts (and so its answer) are not touched
    scrubbed = {"type": "SEND", "to": ALICE_MARK, "subject": f"Receipt for {ALICE_MARK}"}
    assert stored.execution.actions == stored.decision.proposed_actions == [scrubbed]
    assert stored.proposal is not None and stored.proposal.actions == [scrubbed]
    assert stored.guardrails.violations[0].message == f"{ALICE_MARK} is on a blocklist"
    assert stored.summary == f"send to {ALICE_MARK}"
    assert not isinstance(stored.not_fired, type(None))
    [entry] = stored.not_fired  # type: ignore[misc]
    assert entry.values == {"customer.score": {"redacted": "hmac-sha256", "key_id": "test-key", "hash": FORTY_TWO_HASH}}
    assert entry.reason == "basic: customer.score > 50 did not hold (it reads a redacted field)"
    body = canonical(stored)
    assert ALICE not in body and "42" not in body.replace(FORTY_TWO_HASH, "")
    assert (stored.decision_id, stored.ruleset, stored.fired_rules) == (
        logged.decision_id,
        logged.ruleset,
        logged.fired_rules,
    )


def test_an_absent_or_null_field_stays_as_it_is_and_a_record_without_one_is_unchanged() -> None:
    facts = {"kind": "k", "customer": {"email": None, "tier": "basic"}}
    logged = record(facts, {"type": "HOLD"}, "m", [])
    assert redact_record(logged, ["customer.email", "customer.score"], KEY) == logged


def test_replay_facts_name_the_redacted_fields_the_rules_read_and_stand_in_for_the_others() -> None:
    ruleset = parse_ruleset(RULESET.encode(), "rules/notify.yaml", [])
    assert ruleset.redact == ("customer.email", "customer.score")
    stored = {
        "kind": "k",
        "customer": {"email": {"redacted": "hmac-sha256", "key_id": "x", "hash": "ab"}, "tier": "gold"},
    }
    assert redacted_paths(stored) == ["customer.email"]
    facts, read = replay_facts(stored, ruleset)
    assert read == [] and facts == {"kind": "k", "customer": {"email": "redacted:ab", "tier": "gold"}}
    reading = parse_ruleset(RULESET.replace('customer.tier == "gold"', 'customer.email != ""').encode(), "r.yaml", [])
    assert redacted_reads(stored, reading) == ["customer.email"]
    whole = parse_ruleset(RULESET.replace('customer.tier == "gold"', "customer != null").encode(), "r.yaml", [])
    assert replay_facts(stored, whole)[1] == ["customer.email"]
    assert replay_facts({"kind": "k"}, reading) == ({"kind": "k"}, [])


@pytest.mark.parametrize(
    ("paths", "reason", "column"),
    [
        ("[customer.mail]", "redact path 'customer.mail' is not in the facts schema", 10),
        ("[kind.x]", "redact path 'kind.x' is not in the facts schema", 10),
        ("[customer.email, params.x]", "redact path 'params.x' is not in the facts schema", 26),
    ],
)
def test_a_redact_path_outside_the_facts_schema_is_refused_where_it_is_written(
    paths: str, reason: str, column: int
) -> None:
    text = RULESET.replace("[customer.email, customer.score]", paths)
    with pytest.raises(RulesetInvalid) as caught:
        parse_ruleset(text.encode(), "rules/notify.yaml", [])
    [problem] = caught.value.problems
    assert (problem.reason, problem.file, problem.line, problem.column) == (reason, "rules/notify.yaml", 13, column)


def test_the_key_comes_from_the_file_or_the_variable_with_a_derived_id(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"  " + b"s" * 32 + b"\n")
    assert load_redaction_key(Settings(redaction_key_file=key_file)) == RedactionKey(b"s" * 32, "k-f709ae279ade")
    assert load_redaction_key(Settings(redaction_key="t" * 40, redaction_key_id="ops-2026")) == RedactionKey(
        b"t" * 40, "ops-2026"
    )
    assert load_redaction_key(Settings()) is None
    assert required_redaction_key(Settings(), []) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(redaction_key="short"), "the redaction key in OPSGATE_REDACTION_KEY has 5 bytes; at least 32"),
        (Settings(redaction_key_file=Path("/nonexistent/key")), "cannot read the redaction key file /nonexistent/key"),
        (Settings(redaction_key="t" * 40, redaction_key_file=Path("k")), "not both"),
        (Settings(), "ruleset notify declares redact: fields but no key is set"),
    ],
)
def test_an_unusable_or_missing_key_is_refused_when_a_ruleset_redacts(settings: Settings, message: str) -> None:
    with pytest.raises(RedactionKeyMissing, match=message.replace("(", r"\(")) as caught:
        required_redaction_key(settings, ["notify"])
    assert caught.value.code == "redaction_key_missing"


def test_a_redacted_org_id_is_indexed_by_its_keyed_hash_not_the_value() -> None:
    logged = record({"org_id": 42, "kind": "k"}, {"type": "HOLD"}, "m", [])
    stored = redact_record(logged, ["org_id"], KEY)
    assert columns(logged).org_id == "42"
    assert columns(stored).org_id == FORTY_TWO_HASH


def test_check_warns_where_a_rule_reads_a_redacted_field_without_refusing_the_ruleset() -> None:
    text = RULESET.replace('customer.tier == "gold"', 'customer.tier == "gold" and customer.email != ""')
    ruleset = parse_ruleset(text.encode(), "rules/notify.yaml", [])
    [_, warning] = ruleset.warnings  # the first: no rule has `when: true`
    assert (warning.severity, warning.file, warning.line, warning.column) == ("warning", "rules/notify.yaml", 16, 9)
    assert warning.reason == "rule 'gold' reads the redacted field customer.email: its decisions cannot be replayed"
    assert len(parse_ruleset(RULESET.encode(), "rules/notify.yaml", []).warnings) == 1

"""Optional fields: the engine and the expression language agree on null."""

from __future__ import annotations

from pathlib import Path

from service.adapters.rules_engine.engine import shared_engine
from service.authoring.rulesets import load_ruleset


def test_an_optional_field_absent_from_the_facts_fires_the_negated_rule(tmp_path: Path) -> None:
    path = tmp_path / "opt.yaml"
    path.write_text(
        "name: opt\nagent: a\ndescription: d\nowner: o\n"
        "facts:\n  x: {type: int, required: false}\n"
        "escalation: {decision: T.E, action: {type: OPEN_INCIDENT}}\n"
        "rules:\n"
        "  - {id: small, title: S, when: not (x > 1), then: {decision: T.A, confidence: 1, autonomy: L1}}\n"
        "  - {id: not5, title: N, when: x != 5, then: {decision: T.A, confidence: 1, autonomy: L1}}\n"
    )
    ruleset = load_ruleset(path, "rules/opt.yaml", [])
    engine = shared_engine()
    loaded = engine.load(ruleset)
    facts = ruleset.decoder.decode_json(b"{}")
    assert facts == {"x": None}
    assert sorted(engine.match(loaded, facts)) == ["not5", "small"]
    assert engine.match(loaded, {"x": 5}) == []
    assert engine.match(loaded, {"x": 3}) == ["not5"]

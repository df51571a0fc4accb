"""bench/opa_eval.py measures the verdicts it claims to: the real opa with the bundle built from rego/."""

from __future__ import annotations

from pathlib import Path

from bench.opa_eval import INPUTS, measure
from bench.servers import ROOT, start_opa

ALLOW = {"allow": True, "violations": [], "requires_approval": False, "approvals": []}


def test_each_input_gets_the_verdict_it_stands_for_with_an_evaluation_time_per_query(
    tmp_path: Path, opa_bin: str
) -> None:
    opa = start_opa(opa_bin, ROOT / "rego", tmp_path)
    try:
        opa.wait_ready(30)
        names = ["allow", "deny", "none"]
        found = measure([(opa.port, "opsgate/decision", INPUTS[name]) for name in names], 3)
    finally:
        opa.close()
    verdicts = {name: result for name, (_, result) in zip(names, found, strict=True)}
    assert verdicts["allow"] == ALLOW
    assert verdicts["none"] == ALLOW
    deny = verdicts["deny"]
    assert (deny["allow"], deny["requires_approval"]) == (False, True)
    assert [(v["id"], v["action_index"]) for v in deny["violations"]] == [
        ("OPS-MIN-CONFIDENCE", None),
        ("OPS-REASSIGN-TARGET", 0),
        ("OPS-RETRY-LIMIT", 1),
    ]
    assert [a["message"] for a in deny["approvals"]] == ["REASSIGN autonomy L4 exceeds the maximum L3 for org 0"]
    for times, _ in found:
        assert len(times) == 3
        assert all(isinstance(t, int) and t > 0 for t in times)

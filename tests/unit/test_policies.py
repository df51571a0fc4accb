"""Reading rego/ as authored: which files make the bundle, where each rule is, and the bundle on disk."""

from __future__ import annotations

import json
from pathlib import Path

from service.adapters.opa.bundle import write_bundle
from service.authoring.policies import location_key, read_policies

POLICY = """# METADATA
# title: Budget
package guardrails.demo.budget

# METADATA
# title: Over budget
# custom:
#   id: DEMO-BUDGET
#   severity: high
deny contains "over" if {
	input.facts.cost > 10
}

# METADATA
# title: Budget unknown
# custom:
#   id: DEMO-BUDGET
deny contains "unknown" if {
	not input.facts.cost
}
"""


def write_rego(root: Path) -> Path:
    policy = root / "guardrails" / "demo" / "budget"
    policy.mkdir(parents=True)
    (policy / "budget.rego").write_text(POLICY)
    (policy / "budget_test.rego").write_text("package guardrails.demo.budget_test\n")
    (root / "data.json").write_text("{}")
    (root / "README.md").write_text("not a policy")
    return root


def test_the_bundle_holds_policies_and_data_but_not_tests_or_other_files(tmp_path: Path) -> None:
    bundle = read_policies(write_rego(tmp_path / "rego"))
    assert [f.path for f in bundle.files] == ["rego/data.json", "rego/guardrails/demo/budget/budget.rego"]
    assert bundle.hashed[1] == ("rego/guardrails/demo/budget/budget.rego", POLICY.encode())


def test_each_rule_is_located_by_its_id_and_by_its_id_and_title(tmp_path: Path) -> None:
    bundle = read_policies(write_rego(tmp_path / "rego"), display_root="policies")
    where = "policies/guardrails/demo/budget/budget.rego"
    assert bundle.locations == {
        "DEMO-BUDGET": f"{where}:10",
        location_key("DEMO-BUDGET", "Over budget"): f"{where}:10",
        location_key("DEMO-BUDGET", "Budget unknown"): f"{where}:18",
    }


def test_the_bundle_on_disk_carries_its_revision_in_the_manifest(tmp_path: Path) -> None:
    bundle = read_policies(write_rego(tmp_path / "rego"))
    target = write_bundle(bundle, tmp_path / "bundle", "rev-1")
    assert json.loads((target / ".manifest").read_text()) == {"revision": "rev-1"}
    assert (target / "guardrails/demo/budget/budget.rego").read_text() == POLICY
    assert not (target / "guardrails/demo/budget/budget_test.rego").exists()

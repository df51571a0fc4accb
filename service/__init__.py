"""opsgate: policy-as-code decisions from YAML rules, approved by Rego guardrails."""

"""Larger variants of rules/ops.yaml for the rules-at-scale rows: the same facts and the same five rules,
plus generated rules with distinct conditions over several facts that the benchmark's facts never satisfy
(so the decision, and the OPA input, stay those of the five-rule ruleset). They rank above the shipped rules,
which would otherwise shadow them (`opsgate check` warns of rules that can never win)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.servers import ROOT

OPS = ROOT / "rules" / "ops.yaml"
SHIPPED_RULES = 5
PROCESS_TYPES = ("BILLING", "REPORTING", "SHIPPING", "ONBOARDING", "INDEXING", "BACKUP", "EXPORT")
STATUSES = ("unavailable", "overloaded", "offline", "maintenance")


def generated_rule(i: int) -> str:
    """Rule ``i``: a conjunction on type, attempts, a latency window of its own (so none implies another), capacity."""
    kind = PROCESS_TYPES[i % len(PROCESS_TYPES)]
    status = STATUSES[i % len(STATUSES)]
    when = (
        f'process.type == "{kind}" and process.attempts == {2 + i % 5} '
        f"and history.latency >= {1000 + 10 * i} and history.latency < {1010 + 10 * i} "
        f'and resource.capacity < {10 + i % 89} and resource.status == "{status}"'
    )
    return f"""
  - id: generated-{i:04d}
    title: Generated rule {i}
    description: Benchmark filler for rules at scale.
    priority: 60
    when: '{when}'
    then:
      decision: OPS.RETRY
      confidence: 0.5
      autonomy: L1
      actions:
        - type: RETRY
          resource_id: resource.id
          backoff_seconds: params.base_backoff_seconds
"""


def write_variant(total_rules: int, target: Path) -> Path:
    """``target``/ops.yaml with ``total_rules`` rules: the shipped five and generated ones."""
    target.mkdir(parents=True, exist_ok=True)
    text = OPS.read_text().rstrip("\n") + "\n"
    text += "".join(generated_rule(i) for i in range(total_rules - SHIPPED_RULES))
    (target / "ops.yaml").write_text(text)
    return target


def start_check(opsgate: str, rules: Path, rego: Path, opa_bin: str, log: Path) -> subprocess.Popen[bytes]:
    """`opsgate check` on a variant, in the background: at 1,000 rules it takes about as long as the
    server's own load, so the two run side by side."""
    with open(log, "wb") as out:
        args = [opsgate, "check", "--rules-dir", str(rules), "--rego-dir", str(rego), "--opa-bin", opa_bin]
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def finish_check(check: subprocess.Popen[bytes], log: Path, timeout: float = 600) -> None:
    """The variant must pass `opsgate check`, or the benchmark would measure a broken ruleset."""
    if check.wait(timeout=timeout) != 0:
        raise RuntimeError(f"opsgate check rejected a generated ruleset:\n{log.read_text()}")

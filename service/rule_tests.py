"""``opsgate test``: run the rule test cases through the full pipeline (rules plus the real OPA,
without the decision log), run ``opa test`` over ``rego/``, and report failures and coverage."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec

from service.case_capture import write_case
from service.cases import (
    Case,
    Mismatch,
    Policy,
    actual_values,
    compare,
    load_cases,
    ruleset_policies,
    triggered_policies,
)
from service.catalog import Catalog, load_catalog
from service.decision_log import DecisionQuery, Head, StoredRecord, VersionFile, VersionInfo
from service.engine import shared_engine
from service.errors import OpsgateError
from service.guardrails import Guardrails, PolicyTests, find_opa, run_policy_tests
from service.pipeline import DecisionService
from service.settings import Settings

# A verdict that is merely slow on a busy machine must not fail a case: tests ask for correctness,
# and the request path's short timeout would turn a slow answer into an escalation.
TEST_OPA_TIMEOUT_S = 30.0


class CaseResult(msgspec.Struct, frozen=True):
    ruleset: str
    name: str
    file: str
    line: int
    passed: bool
    failures: list[Mismatch]
    fired: list[str]
    policies: list[str]  # triggered: denied or held for approval


class RuleRef(msgspec.Struct, frozen=True):
    id: str
    file: str
    line: int


class RulesetCoverage(msgspec.Struct, frozen=True):
    rules_total: int
    rules_covered: int
    rules_uncovered: list[RuleRef]
    policies_total: int
    policies_triggered: int
    policies_untriggered: list[Policy]
    cases: int


class Report(msgspec.Struct, frozen=True):
    cases: list[CaseResult]
    coverage: dict[str, RulesetCoverage]
    opa_test: PolicyTests
    min_coverage: float

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases if not case.passed]

    @property
    def rule_coverage(self) -> float:
        """Covered rules over all rules of the selected rulesets, in percent."""
        total = sum(c.rules_total for c in self.coverage.values())
        covered = sum(c.rules_covered for c in self.coverage.values())
        return 100.0 if total == 0 else 100.0 * covered / total

    @property
    def ok(self) -> bool:
        return not self.failed and self.opa_test.passed and self.rule_coverage >= self.min_coverage


# --- running --------------------------------------------------------------------


def run(settings: Settings, selected: list[str], min_coverage: float) -> Report:
    """Load everything (raising OpsgateError with file:line:column when broken), then run."""
    catalog = load_catalog(settings.rules_dir, settings.rego_dir)
    for name in selected:
        catalog.get(name)
    names = selected or sorted(catalog.rulesets)
    cases = load_cases(settings.rules_dir, catalog.rulesets, names)
    opa = find_opa(settings.opa_bin)  # `opa test` needs the binary even when the guardrails run elsewhere
    results = asyncio.run(_run_cases(settings, catalog, cases, opa))
    policy_tests = run_policy_tests(opa, settings.rego_dir, "rego")
    coverage = {name: _coverage(catalog, name, results) for name in names}
    return Report(results, coverage, policy_tests, min_coverage)


async def _run_cases(settings: Settings, catalog: Catalog, cases: list[Case], opa: str) -> list[CaseResult]:
    guardrails = Guardrails(opa, timeout=TEST_OPA_TIMEOUT_S, opa_url=settings.opa_url)
    try:
        # the same pieces the server's runtime.prepare wires, except the decision log
        service = await asyncio.to_thread(DecisionService, catalog, shared_engine(), guardrails, _NoLog())
        await guardrails.start(catalog.policies, catalog.version)
        return [await _run_case(service, catalog, case) for case in cases]
    finally:
        await guardrails.close()


async def _run_case(service: DecisionService, catalog: Catalog, case: Case) -> CaseResult:
    ruleset = catalog.get(case.ruleset)
    try:
        # encoded and decoded exactly as a POSTed body would be
        facts = ruleset.decoder.decode_json(msgspec.json.encode(case.facts))
    except OpsgateError as error:  # InvalidFacts, or BadRequest for facts JSON cannot carry
        problem = error.problems[0] if error.problems else None
        where = f"{problem.path}: {problem.reason}" if problem else error.message
        failure = Mismatch("facts", f"facts that fit the {ruleset.name} fact schema", where)
        return CaseResult(case.ruleset, case.name, case.file, case.line, False, [failure], [], [])
    outcome = await service.evaluate(ruleset, facts)
    failures = compare(case.expect, actual_values(outcome, ruleset.hit_policy))
    fired = [rule.id for rule in outcome.fired_rules]
    policies = sorted(triggered_policies(outcome))
    return CaseResult(case.ruleset, case.name, case.file, case.line, not failures, failures, fired, policies)


def _coverage(catalog: Catalog, name: str, results: list[CaseResult]) -> RulesetCoverage:
    ruleset = catalog.get(name)
    mine = [r for r in results if r.ruleset == name]
    fired = {rule for r in mine for rule in r.fired}
    triggered = {policy for r in mine for policy in r.policies}
    policies = ruleset_policies(catalog.policies, name)
    return RulesetCoverage(
        rules_total=len(ruleset.rules),
        rules_covered=sum(1 for rule in ruleset.rules if rule.id in fired),
        rules_uncovered=[RuleRef(rule.id, rule.file, rule.line) for rule in ruleset.rules if rule.id not in fired],
        policies_total=len(policies),
        policies_triggered=sum(1 for p in policies if p.name in triggered),
        policies_untriggered=[p for p in policies if p.name not in triggered],
        cases=len(mine),
    )


class _NoLog:
    """Cases are evaluated, never logged: any use of the log is a bug here."""

    writer = "opsgate-test"

    async def append(self, payload: dict[str, Any]) -> StoredRecord:
        raise OpsgateError("opsgate test does not log decisions")

    async def get(self, decision_id: str) -> list[StoredRecord]:
        return []

    async def query(self, query: DecisionQuery) -> tuple[list[StoredRecord], str | None]:
        return [], None

    async def heads(self) -> list[Head]:
        return []

    async def register_version(
        self, version: str, files: list[tuple[str, bytes]], rulesets: dict[str, str], git: dict[str, Any] | None
    ) -> None:
        return None

    async def versions(self) -> list[VersionInfo]:
        return []

    async def version_files(self, version: str) -> list[VersionFile]:
        return []

    def close(self) -> None:
        return None


# --- reporting ------------------------------------------------------------------


def _percent(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else round(100.0 * part / whole, 1)


def _value(value: Any) -> str:
    return json.dumps(msgspec.to_builtins(value), sort_keys=True) if not isinstance(value, str) else value


def render_text(report: Report) -> str:
    lines: list[str] = []
    for case in report.cases:
        lines.append(f"{'PASS' if case.passed else 'FAIL'} {case.ruleset}: {case.name} ({case.file}:{case.line})")
        lines += [_failure_line(failure) for failure in case.failures]
    for name, cov in report.coverage.items():
        lines.append(
            f"coverage {name}: {cov.cases} case(s); rules {cov.rules_covered}/{cov.rules_total} "
            f"({_percent(cov.rules_covered, cov.rules_total):g}%); guardrail policies "
            f"{cov.policies_triggered}/{cov.policies_total} triggered"
        )
        lines += [f"    rule not fired by any case: {r.id} ({r.file}:{r.line})" for r in cov.rules_uncovered]
        lines += [
            f"    policy not triggered by any case: {p.name} ({p.file}:{p.line})" for p in cov.policies_untriggered
        ]
    lines += _opa_lines(report.opa_test)
    lines.append(_summary(report))
    return "\n".join(lines)


def _failure_line(failure: Mismatch) -> str:
    if failure.key == "facts":  # the case never ran: say which field is wrong and why
        return f"    facts do not fit the fact schema: {failure.actual}"
    return f"    {failure.key}: expected {_value(failure.expected)}, actual {_value(failure.actual)}"


def _opa_lines(tests: PolicyTests) -> list[str]:
    word = "passed" if tests.passed else "FAILED"
    lines = [f"opa test {tests.root}: {word} ({tests.pass_count} passed, {tests.fail_count} failed)"]
    lines += [f"    FAIL {failure}" for failure in tests.failures]
    if tests.error:
        lines.append(f"    {tests.error}")
    return lines


def _summary(report: Report) -> str:
    failed = len(report.failed)
    total = sum(c.rules_total for c in report.coverage.values())
    covered = sum(c.rules_covered for c in report.coverage.values())
    minimum = f", minimum {report.min_coverage:g}%" if report.min_coverage else ""
    below = " BELOW MINIMUM" if report.rule_coverage < report.min_coverage else ""
    return (
        f"{'ok' if report.ok else 'FAILED'}: {len(report.cases)} case(s), {len(report.cases) - failed} passed, "
        f"{failed} failed; rule coverage {report.rule_coverage:.1f}% ({covered}/{total} rules{minimum}){below}; "
        f"opa test {'passed' if report.opa_test.passed else 'failed'}"
    )


def render_json(report: Report) -> str:
    total = sum(c.rules_total for c in report.coverage.values())
    covered = sum(c.rules_covered for c in report.coverage.values())
    document = {
        "ok": report.ok,
        "summary": {"cases": len(report.cases), "passed": len(report.cases) - len(report.failed),
                    "failed": len(report.failed)},
        "cases": [_case_json(case) for case in report.cases],
        "coverage": {
            "rules_total": total,
            "rules_covered": covered,
            "percent": round(report.rule_coverage, 1),
            "minimum": report.min_coverage,
            "ok": report.rule_coverage >= report.min_coverage,
            "rulesets": {name: _coverage_json(cov) for name, cov in report.coverage.items()},
        },
        "opa_test": msgspec.to_builtins(report.opa_test),
    }  # fmt: skip
    return json.dumps(document, indent=2)


def _case_json(case: CaseResult) -> dict[str, Any]:
    return {
        "ruleset": case.ruleset,
        "name": case.name,
        "file": case.file,
        "line": case.line,
        "passed": case.passed,
        "failures": msgspec.to_builtins(case.failures),
    }


def _coverage_json(cov: RulesetCoverage) -> dict[str, Any]:
    return {
        "cases": cov.cases,
        "rules": {
            "total": cov.rules_total,
            "covered": cov.rules_covered,
            "uncovered": msgspec.to_builtins(cov.rules_uncovered),
            "percent": _percent(cov.rules_covered, cov.rules_total),
        },
        "policies": {
            "total": cov.policies_total,
            "triggered": cov.policies_triggered,
            "untriggered": msgspec.to_builtins(cov.policies_untriggered),
            "percent": _percent(cov.policies_triggered, cov.policies_total),
        },
    }


# --- the command ----------------------------------------------------------------

HELP = "run the rule test cases (rules/tests/<ruleset>/*.yaml) and opa test; report coverage"
DESCRIPTION = (
    "Run every case of rules/tests/<ruleset>/*.yaml through the full pipeline (fact schema, rules, "
    "the real OPA with rego/, fail-closed decision; nothing is logged), compare each given expectation, "
    "run `opa test` over rego/, and report the rules no case made fire and the guardrail policies no "
    "case triggered. Rule coverage is the number of rules some case made fire divided by the number of "
    "rules, over all selected rulesets. Exit 0 when everything passes, 1 when a case or opa test fails "
    "or coverage is below --min-coverage, 2 on a usage error or a broken ruleset or case file."
)


def _percentage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # short spellings of --rules-dir / --rego-dir (--rules alone would be ambiguous with --ruleset)
    parser.add_argument("--rules", dest="rules_dir", type=Path, help="same as --rules-dir")
    parser.add_argument("--rego", dest="rego_dir", type=Path, help="same as --rego-dir")
    parser.add_argument(
        "--ruleset", action="append", default=[], metavar="NAME", help="test only this ruleset (repeatable)"
    )
    parser.add_argument(
        "--min-coverage", type=_percentage, default=0.0, metavar="N",
        help="fail (exit 1) when rule coverage, covered rules / total rules over the selected rulesets, is below N%%",
    )  # fmt: skip
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format (default: text)")
    parser.add_argument(
        "--from-decision", metavar="ID",
        help="write a new case file from the logged decision ID (read from --db) instead of running the cases",
    )  # fmt: skip
    parser.add_argument("--name", help="with --from-decision: the case's name and file name (default: the id)")
    parser.add_argument("--out", type=Path, help="with --from-decision: the file to write")


def main(settings: Settings, args: argparse.Namespace) -> int:
    if args.from_decision:
        print(write_case(settings, args.from_decision, args.name, args.out))
        return 0
    if args.name or args.out:
        raise OpsgateError("--name and --out only go with --from-decision")
    report = run(settings, list(dict.fromkeys(args.ruleset)), args.min_coverage)
    print(render_json(report) if args.format == "json" else render_text(report))
    return 0 if report.ok else 1

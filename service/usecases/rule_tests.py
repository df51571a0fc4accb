"""``opsgate test``: run the rule test cases through the full pipeline (rules plus the real OPA,
without the decision log), run ``opa test`` over ``rego/``, and report failures and coverage."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import msgspec

from service.adapters.opa.guardrails import find_opa, run_policy_tests
from service.authoring.cases import Case, Mismatch, compare, load_cases, ruleset_policies, triggered_policies
from service.authoring.catalog import Catalog, load_catalog
from service.errors import OpsgateError
from service.settings import Settings
from service.usecases.candidate import Candidate
from service.usecases.case_capture import write_case
from service.usecases.decide import DecisionService
from service.usecases.rule_report import CaseResult, Report, RuleRef, RulesetCoverage, render_json, render_text

# A verdict that is merely slow on a busy machine must not fail a case: tests ask for correctness,
# and the request path's short timeout would turn a slow answer into an escalation.
TEST_OPA_TIMEOUT_S = 30.0


# --- running --------------------------------------------------------------------


def run(settings: Settings, selected: list[str], min_coverage: float) -> Report:
    """Load everything (raising OpsgateError with file:line:column when broken), then run."""
    catalog = load_catalog(settings.rules_dir, settings.rego_dir)
    for name in selected:
        catalog.get(name)
    names = selected or sorted(catalog.rulesets)
    cases = load_cases(settings.rules_dir, catalog.rulesets, names)
    opa = find_opa(settings.opa_bin)
    results = asyncio.run(_run_cases(catalog, cases, opa))
    policy_tests = run_policy_tests(opa, settings.rego_dir, "rego")
    coverage = {name: _coverage(catalog, name, results) for name in names}
    return Report(results, coverage, policy_tests, min_coverage)


async def _run_cases(catalog: Catalog, cases: list[Case], opa: str) -> list[CaseResult]:
    # always an OPA child loaded from the rego directory, the one `opa test` runs over (never
    # OPSGATE_OPA_URL's server, which may hold other policies); nothing is logged
    candidate = await Candidate.from_catalog(catalog, opa, timeout=TEST_OPA_TIMEOUT_S)
    try:
        return [await _run_case(candidate.service, catalog, case) for case in cases]
    finally:
        await candidate.close()


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
    failures = compare(case.expect, outcome.answer().case_values(ruleset.hit_policy))
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


# --- the command ----------------------------------------------------------------

HELP = "run the rule test cases (rules/tests/<ruleset>/*.yaml) and opa test; report coverage"
DESCRIPTION = (
    "Run every case of rules/tests/<ruleset>/*.yaml through the full pipeline (fact schema, rules, "
    "the real OPA with rego/, fail-closed decision; nothing is logged), compare each given expectation, "
    "run `opa test` over rego/, and report the rules no case made fire and the guardrail policies no "
    "case triggered. Rule coverage is the number of rules some case made fire divided by the number of "
    "rules, over all selected rulesets. Exit 0 when everything passes, 1 when a case or opa test fails "
    "or coverage is below --min-coverage, 2 on a usage error or a broken ruleset or case file. "
    "The cases always run against an OPA child started from the rego directory, the one `opa test` "
    "checks: OPSGATE_OPA_URL is ignored here and --opa-url is refused."
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
    if args.opa_url:  # the environment's OPSGATE_OPA_URL is ignored silently: it is meant for serve
        raise OpsgateError(
            "opsgate test runs the cases against its own OPA started from the rego directory "
            "(the one opa test checks); drop --opa-url"
        )
    if args.from_decision:
        print(write_case(settings, args.from_decision, args.name, args.out))
        return 0
    if args.name or args.out:
        raise OpsgateError("--name and --out only go with --from-decision")
    report = run(settings, list(dict.fromkeys(args.ruleset)), args.min_coverage)
    print(render_json(report) if args.format == "json" else render_text(report))
    return 0 if report.ok else 1

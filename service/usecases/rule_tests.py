"""``opsgate test``: run the rule test cases through the full pipeline (rules plus the real OPA,
without the decision log) and measure their coverage; service/cli/test.py adds ``opa test`` over
``rego/`` and reports."""

from __future__ import annotations

import asyncio

import msgspec

from service.authoring.cases import Case, Mismatch, compare, load_cases, ruleset_policies, triggered_policies
from service.authoring.catalog import Catalog, load_catalog
from service.errors import OpsgateError
from service.settings import Settings
from service.usecases.candidate import Candidates
from service.usecases.decide import DecisionService
from service.usecases.rule_report import CaseResult, RuleRef, RulesetCoverage

# A verdict that is merely slow on a busy machine must not fail a case: tests ask for correctness,
# and the request path's short timeout would turn a slow answer into an escalation.
TEST_OPA_TIMEOUT_S = 30.0


# --- running --------------------------------------------------------------------


class CasePlan(msgspec.Struct, frozen=True):
    """The loaded catalog, the rulesets selected and their cases."""

    catalog: Catalog
    names: list[str]
    cases: list[Case]


class CaseRun(msgspec.Struct, frozen=True):
    results: list[CaseResult]
    coverage: dict[str, RulesetCoverage]


def plan(settings: Settings, selected: list[str]) -> CasePlan:
    """Load everything, raising OpsgateError with file:line:column when broken."""
    catalog = load_catalog(settings.rules_dir, settings.rego_dir)
    for name in selected:
        catalog.get(name)
    names = selected or sorted(catalog.rulesets)
    return CasePlan(catalog, names, load_cases(settings.rules_dir, catalog.rulesets, names))


def run(case_plan: CasePlan, candidates: Candidates) -> CaseRun:
    """Run every case through a candidate of the plan's catalog; the results and each ruleset's coverage."""
    results = asyncio.run(_run_cases(case_plan.catalog, case_plan.cases, candidates))
    coverage = {name: _coverage(case_plan.catalog, name, results) for name in case_plan.names}
    return CaseRun(results, coverage)


async def _run_cases(catalog: Catalog, cases: list[Case], candidates: Candidates) -> list[CaseResult]:
    # a candidate: always an OPA child loaded from the rego directory, the one `opa test` runs over
    # (never OPSGATE_OPA_URL's server, which may hold other policies); nothing is logged
    candidate = await candidates.from_catalog(catalog)
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

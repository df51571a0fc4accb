"""``opsgate test``: its flags, the run (the rule test cases, then ``opa test`` over ``rego/``) and
the report; ``--from-decision`` writes a case from a logged decision instead."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from service import bootstrap
from service.errors import UsageError
from service.settings import Settings
from service.usecases import rule_tests
from service.usecases.case_capture import write_case
from service.usecases.rule_report import Report, render_json, render_text


def run(settings: Settings, selected: list[str], min_coverage: float) -> Report:
    """Load everything (raising OpsgateError with file:line:column when broken), then run."""
    plan = rule_tests.plan(settings, selected)
    opa = bootstrap.opa_bin(settings)
    # the cases run on a candidate: an OPA child of the rego directory, with a test's patient timeout
    candidates = bootstrap.candidates(msgspec.structs.replace(settings, opa_bin=opa), rule_tests.TEST_OPA_TIMEOUT_S)
    cases = rule_tests.run(plan, candidates)
    return Report(cases.results, cases.coverage, bootstrap.policy_tests(settings, opa), min_coverage)


def _capture(settings: Settings, decision_id: str, name: str | None, out: Path | None) -> Path:
    log = bootstrap.open_log(settings, "opsgate-test", read_only=True)
    try:
        return write_case(settings, log.records, decision_id, name, out)
    finally:
        log.close()


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
        raise UsageError(
            "opsgate test runs the cases against its own OPA started from the rego directory "
            "(the one opa test checks); drop --opa-url"
        )
    if args.from_decision:
        print(_capture(settings, args.from_decision, args.name, args.out))
        return 0
    if args.name or args.out:
        raise UsageError("--name and --out only go with --from-decision")
    report = run(settings, list(dict.fromkeys(args.ruleset)), args.min_coverage)
    print(render_json(report) if args.format == "json" else render_text(report))
    return 0 if report.ok else 1

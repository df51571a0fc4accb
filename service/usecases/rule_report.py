"""The report of ``opsgate test``: its results and coverage, rendered as text or JSON."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from service.authoring.cases import Mismatch, Policy
from service.authoring.policies import PolicyTests


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
    def rules_total(self) -> int:
        return sum(c.rules_total for c in self.coverage.values())

    @property
    def rules_covered(self) -> int:
        return sum(c.rules_covered for c in self.coverage.values())

    @property
    def rule_coverage(self) -> float:
        """Covered rules over all rules of the selected rulesets, in percent."""
        total = self.rules_total
        return 100.0 if total == 0 else 100.0 * self.rules_covered / total

    @property
    def ok(self) -> bool:
        return not self.failed and self.opa_test.passed and self.rule_coverage >= self.min_coverage


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
    total, covered = report.rules_total, report.rules_covered
    minimum = f", minimum {report.min_coverage:g}%" if report.min_coverage else ""
    below = " BELOW MINIMUM" if report.rule_coverage < report.min_coverage else ""
    return (
        f"{'ok' if report.ok else 'FAILED'}: {len(report.cases)} case(s), {len(report.cases) - failed} passed, "
        f"{failed} failed; rule coverage {report.rule_coverage:.1f}% ({covered}/{total} rules{minimum}){below}; "
        f"opa test {'passed' if report.opa_test.passed else 'failed'}"
    )


def render_json(report: Report) -> str:
    total, covered = report.rules_total, report.rules_covered
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

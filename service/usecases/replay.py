"""``opsgate replay``: re-decide logged decisions under a candidate version and count the flips.

The log is read newest first, one page at a time through the store's cursor, so
memory stays flat however long the log is; nothing is written to it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from service.adapters.store.sql import SqlDecisionLog
from service.domain.record import DecisionQuery, StoredRecord, normalize_time
from service.errors import BadRequest
from service.usecases.candidate import Candidate, NotComparable
from service.usecases.flips import NO_LOGGED_VERDICT, Flip, FlipMatrix, FlipSummary, Side, Skipped
from service.usecases.review import decision_of

PAGE = 500  # the store's largest page
DEFAULT_SAMPLES = 5


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True):
    db: str
    rules_dir: Path
    rego_dir: Path
    opa_bin: str | None = None
    since: str | None = None
    until: str | None = None
    ruleset: str | None = None
    limit: int | None = None
    samples: int = DEFAULT_SAMPLES


class ReplayReport(msgspec.Struct, frozen=True):
    candidate_version: str
    log: str
    replayed: int  # re-decided and compared (the not replayable ones are not counted here)
    changed: int  # the final decision type differs
    not_replayable: int
    matrix: dict[str, dict[str, int]]
    flips: list[Flip]
    not_replayable_reasons: list[Skipped]

    @classmethod
    def of(cls, version: str, log: str, summary: FlipSummary) -> ReplayReport:
        skipped = sum(s.count for s in summary.not_comparable)
        return cls(version, log, summary.compared, summary.changed, skipped, summary.matrix,
                   list(summary.flips), list(summary.not_comparable))  # fmt: skip


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay", help="re-decide logged decisions under a candidate version and print the flip matrix"
    )
    replay.add_argument("--db", help="decision log: a SQLite file path or a postgresql:// URL")
    replay.add_argument("--candidate-rules", type=Path, required=True, help="the candidate's rules/ directory")
    replay.add_argument("--candidate-rego", type=Path, required=True, help="the candidate's rego/ directory")
    replay.add_argument("--since", help="only decisions at or after this RFC 3339 time")
    replay.add_argument("--until", help="only decisions before this RFC 3339 time")
    replay.add_argument("--ruleset", help="only decisions of this ruleset")
    replay.add_argument("--limit", type=_positive, help="at most this many decisions, newest first")
    replay.add_argument("--samples", type=_count, default=DEFAULT_SAMPLES, help="decision ids shown per flip")
    replay.add_argument("--format", choices=("text", "json"), default="text")
    replay.add_argument("--opa-bin", help="the opa binary for the candidate's OPA")


def request_of(args: argparse.Namespace, db: str, opa_bin: str | None) -> ReplayRequest:
    for name in ("since", "until"):
        value = getattr(args, name)
        try:
            if value:
                normalize_time(value)
        except ValueError:
            raise BadRequest(f"--{name} {value!r} is not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)") from None
    return ReplayRequest(
        db=db, rules_dir=args.candidate_rules, rego_dir=args.candidate_rego, opa_bin=opa_bin, since=args.since,
        until=args.until, ruleset=args.ruleset, limit=args.limit, samples=args.samples,
    )  # fmt: skip


async def replay(request: ReplayRequest) -> ReplayReport:
    """Re-decide every matching logged decision under the candidate; nothing is logged."""
    log = SqlDecisionLog(request.db, "opsgate-replay", read_only=True)
    try:
        candidate = await Candidate.open(request.rules_dir, request.rego_dir, request.opa_bin)
        try:
            matrix = FlipMatrix(request.samples)
            async for stored in _decisions(log, request):
                await _compare(candidate, stored, matrix)
            return ReplayReport.of(candidate.version, log.description, matrix.summary())
        finally:
            await candidate.close()
    finally:
        log.close()


async def _decisions(log: SqlDecisionLog, request: ReplayRequest) -> AsyncIterator[StoredRecord]:
    """Matching decisions newest first, a page at a time (at most ``limit`` in all)."""
    left = request.limit
    query = DecisionQuery(since=request.since, until=request.until, ruleset=request.ruleset, limit=PAGE)
    while left is None or left > 0:
        page = query if left is None else msgspec.structs.replace(query, limit=min(PAGE, left))
        rows, cursor = await log.query(page)
        for row in rows:
            yield row
        if left is not None:
            left -= len(rows)
        if cursor is None:
            return
        query = msgspec.structs.replace(query, cursor=cursor)


async def _compare(candidate: Candidate, stored: StoredRecord, matrix: FlipMatrix) -> None:
    record = decision_of(stored)
    logged = record.answer()
    if logged.no_verdict:
        matrix.skip(stored.decision_id, NO_LOGGED_VERDICT)
        return
    try:
        outcome = await candidate.redecide(record.ruleset.name, record.facts)
    except NotComparable as skipped:
        matrix.skip(stored.decision_id, skipped.reason)
        return
    matrix.add(stored.decision_id, Side.of(logged), Side.of(outcome.answer()))


# --- output -------------------------------------------------------------------------


def render_text(report: ReplayReport) -> str:
    lines = [
        f"candidate {report.candidate_version}",
        f"log {report.log}",
        f"replayed {report.replayed}, changed {report.changed}, not replayable {report.not_replayable}",
        "",
        *_matrix_lines(report.matrix),
    ]
    for flip in report.flips:
        lines += ["", f"{flip.old} -> {flip.new}: {flip.count}"]
        lines += [_sample_line(s.decision_id, s.old, s.new) for s in flip.samples]
    if report.not_replayable_reasons:
        lines += ["", "not replayable:"]
    for skipped in report.not_replayable_reasons:
        lines.append(f"  {skipped.count}  {skipped.reason}")
        lines += [f"    {decision_id}" for decision_id in skipped.samples]
    return "\n".join(lines) + "\n"


def _matrix_lines(matrix: dict[str, dict[str, int]]) -> list[str]:
    if not matrix:
        return ["(no decisions replayed)"]
    types = sorted({*matrix, *(new for row in matrix.values() for new in row)})
    first = max(len("old \\ new"), *(len(t) for t in types))
    columns = list(zip(types, [max(len(t), 5) for t in types], strict=True))
    header = "old \\ new".ljust(first) + "".join(f"  {t:>{w}}" for t, w in columns)
    rows = [
        old.ljust(first) + "".join(f"  {matrix.get(old, {}).get(new, 0):>{w}}" for new, w in columns) for old in types
    ]
    return [header, *rows]


def _sample_line(decision_id: str, old: Side, new: Side) -> str:
    rules = f"{','.join(old.rules) or '-'} -> {','.join(new.rules) or '-'}"
    violations = f"{','.join(old.violations) or '-'} -> {','.join(new.violations) or '-'}"
    return f"  {decision_id}  rules {rules}  violations {violations}"


def print_report(report: ReplayReport, output_format: str) -> None:
    if output_format == "json":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")
    else:
        sys.stdout.write(render_text(report))

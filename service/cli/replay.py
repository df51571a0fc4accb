"""``opsgate replay``: its flags, and the flip matrix printed as text or JSON (the re-deciding is
service/usecases/replay.py's)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from service import bootstrap
from service.domain.record import normalize_time
from service.errors import BadRequest
from service.settings import Settings
from service.usecases.flips import Side
from service.usecases.replay import DEFAULT_SAMPLES, ReplayReport, ReplayRequest, replay

MATRIX_WIDTH = 100  # characters: a ruleset's matrix wider than this numbers its columns


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


def request_of(args: argparse.Namespace) -> ReplayRequest:
    for name in ("since", "until"):
        value = getattr(args, name)
        try:
            if value:
                normalize_time(value)
        except ValueError:
            raise BadRequest(f"--{name} {value!r} is not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)") from None
    return ReplayRequest(
        rules_dir=args.candidate_rules, rego_dir=args.candidate_rego, since=args.since, until=args.until,
        ruleset=args.ruleset, limit=args.limit, samples=args.samples,
    )  # fmt: skip


def render_text(report: ReplayReport) -> str:
    lines = [
        f"candidate {report.candidate_version}",
        f"log {report.log}",
        f"replayed {report.replayed}, changed {report.changed}, not replayable {report.not_replayable}",
        *_blocks(report),
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


def _blocks(report: ReplayReport) -> list[str]:
    """The flip matrix, one block per ruleset (a decision only ever flips within its ruleset), so a
    log of several rulesets prints several small matrices rather than one as wide as all their types."""
    if not report.matrix:
        return ["", "(no decisions replayed)"]
    lines: list[str] = []
    for name, types in report.rulesets.items():
        cells = {(old, new): report.matrix.get(old, {}).get(new, 0) for old in types for new in types}
        changed = sum(count for (old, new), count in cells.items() if old != new)
        lines += ["", f"{name}: replayed {sum(cells.values())}, changed {changed}", *_matrix_lines(types, cells)]
    return lines


def _matrix_lines(types: list[str], cells: dict[tuple[str, str], int]) -> list[str]:
    """Columns named by the decision types; numbered (1, 2, …, as the rows) where the names would make
    the matrix wider than MATRIX_WIDTH."""
    first = max(len("old \\ new"), *(len(t) for t in types))
    labels = types
    if first + sum(2 + max(len(t), 5) for t in types) > MATRIX_WIDTH:
        labels = [str(number) for number in range(1, len(types) + 1)]
        types_shown = [f"{number} {t}" for number, t in zip(labels, types, strict=True)]
        first = max(len("old \\ new"), *(len(t) for t in types_shown))
    else:
        types_shown = types
    widths = [max(len(label), 5) for label in labels]
    header = "old \\ new".ljust(first) + "".join(f"  {label:>{w}}" for label, w in zip(labels, widths, strict=True))
    rows = [
        shown.ljust(first) + "".join(f"  {cells[(old, new)]:>{w}}" for new, w in zip(types, widths, strict=True))
        for old, shown in zip(types, types_shown, strict=True)
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


def main(settings: Settings, args: argparse.Namespace) -> int:
    request = request_of(args)
    report = asyncio.run(_replay(settings, request))
    print_report(report, args.format)
    return 0


async def _replay(settings: Settings, request: ReplayRequest) -> ReplayReport:
    log = bootstrap.open_log(settings, "opsgate-replay", read_only=True)
    try:
        return await replay(request, log, bootstrap.candidates(settings))
    finally:
        log.close()

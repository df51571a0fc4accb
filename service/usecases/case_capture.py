"""``opsgate test --from-decision ID``: turn a logged decision into a regression test case.

The case holds the decision's stored facts and its actual outcome as ``expect``, in the
agreed case format (see ``service/authoring/cases.py``), under ``rules/tests/<ruleset>/``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Protocol

import yaml

from service.authoring.catalog import load_catalog
from service.domain.record import DecisionRecord, StoredRecord
from service.domain.redaction import redacted_paths
from service.errors import Conflict, NotCapturable, NotFound
from service.settings import Settings
from service.usecases.review import decision_of


class LoggedDecision(Protocol):
    """What case capture reads of the decision log: one decision's records."""

    async def get(self, decision_id: str) -> list[StoredRecord]: ...


def read_decision(log: LoggedDecision, db: str, decision_id: str) -> DecisionRecord:
    """The logged record of ``decision_id`` (the one ``GET /decisions/{id}`` shows) in ``log``,
    the log of ``db``."""
    entries: list[StoredRecord] = asyncio.run(log.get(decision_id))
    decisions = [entry for entry in entries if entry.kind == "decision"]
    if not decisions:
        raise NotFound(f"no decision {decision_id!r} in the log at {db}")
    return decision_of(decisions[0])


def expectation(record: DecisionRecord, hit_policy: str) -> dict[str, Any]:
    """The outcome the decision actually had, as a case's ``expect`` (its actions are left out:
    they repeat the facts and would make the case break on any change of action fields)."""
    values = record.answer().case_values(hit_policy)
    del values["actions"]
    return values


def case_text(record: DecisionRecord, name: str, hit_policy: str) -> str:
    """The case file: a comment naming where it came from, then one case."""
    case = {"name": name, "facts": record.facts, "expect": expectation(record, hit_policy)}
    header = (
        f"# From logged decision {record.decision_id} ({record.created_at}, caller {record.caller}),\n"
        f"# decided by ruleset {record.ruleset.name} version {record.ruleset.version},\n"
        f"# bundle revision {record.bundle_revision}. Written by opsgate test --from-decision:\n"
        "# the expectations are what was decided then; review them before committing.\n"
    )
    return header + yaml.safe_dump([case], sort_keys=False, default_flow_style=False, allow_unicode=True)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "case"


def write_case(settings: Settings, log: LoggedDecision, decision_id: str, name: str | None, out: Path | None) -> Path:
    """Write the case file for ``decision_id``, read from ``log``; refuses to overwrite. Returns the path written."""
    record = read_decision(log, settings.db, decision_id)
    if record.answer().no_verdict:  # its expectations would hold only while OPA is down
        raise NotCapturable(
            f"decision {decision_id} has no guardrail verdict (it failed closed: "
            f"{record.guardrails.error or 'OPA gave no answer'}); it cannot become a test case"
        )
    hidden = redacted_paths(record.facts)
    if hidden:  # the log holds only their keyed hashes: the facts cannot be decided again
        raise NotCapturable(
            f"decision {decision_id} has redacted facts ({', '.join(hidden)}): the log holds only their "
            "keyed hashes, so it cannot become a test case"
        )
    ruleset_name = record.ruleset.name
    catalog = load_catalog(settings.rules_dir, settings.rego_dir)
    if ruleset_name not in catalog.rulesets:
        raise NotCapturable(f"decision {decision_id} was made by ruleset {ruleset_name!r}, not in {settings.rules_dir}")
    case_name = name or f"decision {decision_id}"
    target = out or settings.rules_dir / "tests" / ruleset_name / f"{_file_name(name or decision_id)}.yaml"
    text = case_text(record, case_name, catalog.rulesets[ruleset_name].hit_policy)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "x", encoding="utf-8") as file:  # "x": never overwrite a case someone wrote
            file.write(text)
    except FileExistsError:
        raise Conflict(f"{target} exists; choose another --name or --out") from None
    return target

"""Redaction of declared fact fields in the decision log.  Pure: the key is given, never loaded here.

A ruleset lists fact paths under ``redact:`` (``customer.email``).  The record the log stores
holds, in place of each such value, a marker::

    {"redacted": "hmac-sha256", "key_id": "<key id>", "hash": "<hex HMAC-SHA256>"}

where the hash is HMAC-SHA256 under the configured key of the value's canonical JSON (a string
``a@b.example`` is hashed as the 13 bytes ``"a@b.example"``, quotes included).  The same value
under the same key gives the same hash, whatever the ruleset or path, so decisions about one
value can be correlated without revealing it.  A field that is absent or null is left as it is.

Any other text of the record that repeats a redacted string (an action field computed from
it, a guardrail's message, the ``explain=full`` values) has each occurrence replaced by
``[redacted:<key id>:<hash>]``, so no byte of the value reaches the log.  The caller's answer
is built before this and is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import msgspec

from service.domain import expr
from service.domain.record import DecisionRecord, canonical
from service.domain.ruleset import Rule, Ruleset

ALGORITHM = "hmac-sha256"
MIN_KEY_BYTES = 32
_MARKER_KEYS = {"redacted", "key_id", "hash"}
_MIN_SCRUBBED = 3  # shorter strings (a "no", a "1") are not searched for in the record's other text


class RedactionKey(msgspec.Struct, frozen=True):
    """The secret that redaction hashes under, and the id the markers name it by."""

    key: bytes
    key_id: str


def default_key_id(key: bytes) -> str:
    """A key's id when none is configured: a short hash that names the key without revealing it."""
    return "k-" + hashlib.sha256(b"opsgate redaction key id\0" + key).hexdigest()[:12]


def keyed_hash(key: RedactionKey, value: Any) -> str:
    return hmac.new(key.key, canonical(value).encode(), hashlib.sha256).hexdigest()


def marker(key: RedactionKey, value: Any) -> dict[str, str]:
    return {"redacted": ALGORITHM, "key_id": key.key_id, "hash": keyed_hash(key, value)}


def is_redacted(value: Any) -> bool:
    """Whether a stored fact value is a redaction marker."""
    return isinstance(value, dict) and value.get("redacted") == ALGORITHM and set(value) == _MARKER_KEYS


def redacted_paths(facts: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of ``facts`` that hold a redaction marker, in order."""
    found: list[str] = []
    for name, value in facts.items():
        if is_redacted(value):
            found.append(prefix + name)
        elif isinstance(value, dict):
            found.extend(redacted_paths(value, f"{prefix}{name}."))
    return found


def redact_record(record: DecisionRecord, paths: Iterable[str], key: RedactionKey) -> DecisionRecord:
    """``record`` as the log stores it: each of ``paths`` in its facts replaced by its marker, and
    every other text of the record that repeats a redacted string scrubbed."""
    facts = dict(record.facts)
    secrets: dict[str, str] = {}
    tags: dict[str, dict[str, str]] = {}
    for path in paths:
        value = _take(facts, path.split("."))
        if value is None:
            continue
        tag = tags[path] = marker(key, value)
        _put(facts, path.split("."), tag)
        for text in _strings(value):
            if len(text) >= _MIN_SCRUBBED:
                secrets[text] = f"[redacted:{key.key_id}:{tag['hash']}]"
    if not secrets and facts == record.facts:
        return record
    body = msgspec.to_builtins(msgspec.structs.replace(record, facts={}))
    longest_first = sorted(secrets.items(), key=lambda item: -len(item[0]))
    for name, inner in _FREE_TEXT:
        part = body.get(name)
        if part is None:
            continue
        if inner is None:
            body[name] = _scrub(part, longest_first)
        elif isinstance(part, dict):
            part[inner] = _scrub(part.get(inner), longest_first)
    for entry in body.get("not_fired", []):
        _hide_read_values(entry, tags)
    return msgspec.structs.replace(msgspec.convert(body, DecisionRecord), facts=facts)


def _hide_read_values(entry: dict[str, Any], tags: dict[str, dict[str, str]]) -> None:
    """A why-not entry (``explain=full``) that read a redacted field keeps its marker, not the value;
    its reason, which would quote the value, says only that (numbers are not found by scrubbing)."""
    hidden = False
    for read in list(entry["values"]):
        for path, tag in tags.items():
            if read == path or read.startswith(path + "."):
                entry["values"][read], hidden = tag, True
            elif path.startswith(read + "."):
                entry["values"][read], hidden = None, True
    if hidden:
        entry["reason"] = f"{entry['id']}: {entry['condition']} did not hold (it reads a redacted field)"


# the parts of a record that may repeat a fact's value; ids, times, names and statuses never do
# (and scrubbing them would change what the log indexes the record by)
_FREE_TEXT = (
    ("proposal", None),
    ("guardrails", None),
    ("summary", None),
    ("error", None),
    ("not_fired", None),
    ("decision", "proposed_actions"),
    ("execution", "actions"),
)


def _take(facts: dict[str, Any], parts: list[str]) -> Any:
    value: Any = facts
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _put(facts: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``value`` at ``parts``, copying each object on the way (the caller's facts stay as they were)."""
    head, rest = parts[0], parts[1:]
    facts[head] = dict(facts[head]) if rest else value
    if rest:
        _put(facts[head], rest, value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _scrub(value: Any, secrets: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for secret, replacement in secrets:
            value = value.replace(secret, replacement)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


# --- what a ruleset reads, for replay ---------------------------------------------


def read_paths(ruleset: Ruleset) -> set[str]:
    """Every fact path the ruleset's expressions read (conditions, outputs, priority cases)."""
    nodes: list[expr.Node] = [node for node, _ in ruleset.priority]
    nodes += [out.node for _, out in ruleset.escalation_action.fields]
    found = {path.dotted for node in nodes for path in expr.paths(node) if path.parts[0] in ruleset.facts}
    return found.union(*(rule_paths(rule, ruleset) for rule in ruleset.rules))


def rule_paths(rule: Rule, ruleset: Ruleset) -> set[str]:
    """The fact paths one rule reads: its condition, confidence and action fields."""
    nodes = [rule.when, rule.confidence.node, *(out.node for a in rule.actions for _, out in a.fields)]
    return {path.dotted for node in nodes for path in expr.paths(node) if path.parts[0] in ruleset.facts}


def touches(read: str, redacted: str) -> bool:
    """Whether reading ``read`` reads the redacted field ``redacted`` (the same path, one above or below it)."""
    return read == redacted or read.startswith(redacted + ".") or redacted.startswith(read + ".")


def redacted_rule_warnings(ruleset: Ruleset) -> list[tuple[int, str]]:
    """(rule index, reason) for each rule that reads a field the ruleset redacts: its logged
    decisions cannot be replayed (``opsgate check`` warns, it does not refuse)."""
    found: list[tuple[int, str]] = []
    for index, rule in enumerate(ruleset.rules):
        hidden = sorted({r for r in ruleset.redact for read in rule_paths(rule, ruleset) if touches(read, r)})
        if hidden:
            reason = f"rule {rule.id!r} reads the redacted field {', '.join(hidden)}"
            found.append((index, reason + ": its decisions cannot be replayed"))
    return found


def redacted_reads(facts: dict[str, Any], ruleset: Ruleset) -> list[str]:
    """The redacted fields of stored ``facts`` that ``ruleset`` reads (a path, or one above or below it)."""
    reads = read_paths(ruleset)
    return [path for path in redacted_paths(facts) if any(touches(read, path) for read in reads)]


def stand_in(facts: dict[str, Any]) -> dict[str, Any]:
    """Stored facts with each marker replaced by the text ``redacted:<hash>``, for re-deciding facts
    whose rules do not read the redacted fields (the field must still be there to fit the schema)."""
    return {name: _stand_in(value) for name, value in facts.items()}


def _stand_in(value: Any) -> Any:
    if is_redacted(value):
        return f"redacted:{value['hash']}"
    return stand_in(value) if isinstance(value, dict) else value


def replay_facts(facts: dict[str, Any], ruleset: Ruleset | None) -> tuple[dict[str, Any], list[str]]:
    """Stored ``facts`` as ``ruleset`` can re-decide them, and the redacted fields it would read
    (when any, the decision cannot be replayed: the value is gone from the log)."""
    if not redacted_paths(facts):
        return facts, []
    return stand_in(facts), redacted_reads(facts, ruleset) if ruleset else []


def not_replayable(fields: list[str]) -> str:
    return f"its rules read the redacted field{'s' if len(fields) > 1 else ''} {', '.join(fields)}"

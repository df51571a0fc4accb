"""Context providers: where a ruleset gets a fact group a request leaves out.  Pure.

A ruleset declares, per top-level fact group, an HTTP source whose URL may name other facts
(``{resource.id}``)::

    context:
      history: {http: "http://127.0.0.1:9000/history/{resource.id}", timeout_ms: 50, cache_s: 5}

Checking a declaration (unknown group, bad placeholder, bad timeout) is here, located by
service/authoring/rulesets.py; fetching is service/usecases/context.py over the port
service/ports/context.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec

from service.domain.schema import FactDecoder, FieldSpec

MISSING_CONTEXT = "missing context"  # how the reason a decision escalated for lack of a group begins
MAX_TIMEOUT_MS = 60_000
MAX_CACHE_S = 86_400.0
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SCALAR_TYPES = ("int", "number", "str", "bool")

Located = tuple[str, int, str]  # (the spec's field: "http", "timeout_ms" or "cache_s"; offset in it; reason)


class ProviderSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One provider as written in a ruleset file."""

    http: str
    timeout_ms: int | float
    cache_s: int | float = 0


class Provider(msgspec.Struct, frozen=True):
    """A checked provider: the group it fills, its URL template and the facts the URL names."""

    group: str
    url: str
    placeholders: tuple[str, ...]
    timeout_ms: float
    cache_s: float
    decoder: FactDecoder  # the group's own schema: a fetched value is checked by it


class ContextSource(msgspec.Struct, frozen=True):
    """Where a fact group of a decision came from: the URL asked, how old the value was when the
    rules saw it (0 when fetched for this decision), and when it was fetched (the log's time format)."""

    source: str
    age_ms: float
    fetched_at: str


def placeholders(template: str) -> list[tuple[int, str]]:
    """``(offset, path)`` of each ``{path}`` in ``template``."""
    return [(match.start(1), match.group(1)) for match in _PLACEHOLDER.finditer(template)]


def provider_problems(
    group: str, spec: ProviderSpec, facts: dict[str, FieldSpec], provided: set[str], redacted: tuple[str, ...] = ()
) -> list[Located]:
    """What is wrong with ``group``'s provider ``spec`` given the ruleset's ``facts``, the groups that
    have providers (``provided``) and the ``redacted`` paths: each as (field, offset, reason)."""
    if group not in facts:
        return [("", 0, f"unknown fact group {group!r} (facts are: {', '.join(sorted(facts))})")]
    found = _url_problems(spec.http, facts, provided)
    for offset, path in placeholders(spec.http):
        if any(path == r or path.startswith(r + ".") or r.startswith(path + ".") for r in redacted):
            reason = f"placeholder {{{path}}} names a redacted fact: its value would be logged in the source URL"
            found.append(("http", offset, reason))
    if isinstance(spec.timeout_ms, bool) or not 0 < spec.timeout_ms <= MAX_TIMEOUT_MS:
        reason = f"timeout_ms is the milliseconds the provider may take: a number from 1 to {MAX_TIMEOUT_MS}"
        found.append(("timeout_ms", 0, reason))
    if isinstance(spec.cache_s, bool) or not 0 <= spec.cache_s <= MAX_CACHE_S:
        found.append(("cache_s", 0, f"cache_s is the seconds a fetched value is kept: 0 to {MAX_CACHE_S:g}"))
    return found


def _url_problems(url: str, facts: dict[str, FieldSpec], provided: set[str]) -> list[Located]:
    if not url.startswith(("http://", "https://")):
        return [("http", 0, "the provider's URL must start with http:// or https://")]
    found: list[Located] = []
    stray = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), url)
    for offset, char in enumerate(stray):
        if char in "{}":
            found.append(("http", offset, f"unmatched {char!r}: a placeholder is {{fact.path}}"))
    for offset, path in placeholders(url):
        reason = _placeholder_problem(path, facts, provided)
        if reason:
            found.append(("http", offset, reason))
    return found


def _placeholder_problem(path: str, facts: dict[str, FieldSpec], provided: set[str]) -> str | None:
    if not _PATH.fullmatch(path):
        return f"placeholder {{{path}}} must name a fact path such as resource.id"
    parts = path.split(".")
    if parts[0] in provided:
        return f"placeholder {{{path}}} names the group {parts[0]!r}, which is itself fetched"
    spec: FieldSpec | None = facts.get(parts[0])
    for name in parts[1:]:
        spec = (spec.fields or {}).get(name) if spec is not None and spec.type == "object" else None
    if spec is None:
        return f"placeholder {{{path}}} is not a path of the facts schema"
    if spec.type not in _SCALAR_TYPES:
        return f"placeholder {{{path}}} names a {spec.type}: only a str, int, number or bool fits in a URL"
    return None


def build_provider(ruleset: str, group: str, spec: ProviderSpec, facts: dict[str, FieldSpec]) -> Provider:
    """The checked form of a provider ``provider_problems`` found nothing wrong with."""
    decoder = FactDecoder(f"{ruleset}_{group}_context", {group: facts[group]})
    paths = tuple(path for _, path in placeholders(spec.http))
    return Provider(group, spec.http, paths, float(spec.timeout_ms), float(spec.cache_s), decoder)


def request_fields(facts: dict[str, FieldSpec], provided: set[str]) -> dict[str, FieldSpec]:
    """The schema a request's facts are checked by: a group with a provider may be left out."""
    return {
        name: msgspec.structs.replace(spec, required=False, default=None) if name in provided else spec
        for name, spec in facts.items()
    }


def left_out(providers: dict[str, Provider], facts: dict[str, Any]) -> str | None:
    """Why ``facts`` cannot be decided on where nothing fetches (a replay, a test case): the provided
    groups they lack; None when they lack none."""
    missing = [group for group in providers if facts.get(group) is None]
    return f"{MISSING_CONTEXT}: {', '.join(missing)}: left out, and not fetched here" if missing else None


class MissingPlaceholder(Exception):
    """A fact the URL names has no value in this request."""


def render_url(provider: Provider, facts: dict[str, Any]) -> str:
    """``provider``'s URL with each placeholder replaced by its fact, percent-encoded; raises
    MissingPlaceholder when one is null or absent."""

    def value(match: re.Match[str]) -> str:
        found: Any = facts
        for name in match.group(1).split("."):
            found = found.get(name) if isinstance(found, dict) else None
        if found is None:
            raise MissingPlaceholder(f"the fact {match.group(1)} the URL names has no value")
        text = ("true" if found else "false") if isinstance(found, bool) else str(found)
        return quote(text, safe="")

    return _PLACEHOLDER.sub(value, provider.url)

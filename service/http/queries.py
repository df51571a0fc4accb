"""Query strings as typed values: each route's parameters decoded here, 400 naming the one that is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import msgspec

from service.domain.record import DecisionQuery, normalize_time
from service.domain.schema import facts_problem
from service.errors import BadRequest, Problem

T = TypeVar("T")

MAX_PENDING_PAGE = 500
DEFAULT_WINDOW = "1h"
MAX_WINDOW = timedelta(days=31)
_WINDOW = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class PendingQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PENDING_PAGE)] = 100


class ProofQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    from_size: Annotated[int, msgspec.Meta(ge=1)] | None = None  # also the consistency proof from this tree size


class DashboardQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    window: str | None = None  # e.g. 15m, 1h, 7d: the window ending at ``until`` (default now)
    since: str | None = None  # RFC 3339, inclusive (instead of a window)
    until: str | None = None  # RFC 3339, exclusive


def decode_query(params: Mapping[str, str], kind: type[T]) -> T:
    """A query string as ``kind`` (values converted from text): 400 naming the parameter when one is wrong."""
    try:
        query: T = msgspec.convert(dict(params), kind, strict=False)
    except msgspec.ValidationError as error:
        problem = facts_problem(str(error))
        raise BadRequest(f"invalid query parameter {problem.path}: {problem.reason}", [problem]) from None
    return query


def _bad(name: str, reason: str) -> BadRequest:
    return BadRequest(f"invalid query parameter {name}: {reason}", [Problem(reason, path=name)])


def query_time(name: str, text: str) -> str:
    """Query parameter ``name`` as the log's time; 400 naming it when it is not an RFC 3339 time."""
    try:
        return normalize_time(text)
    except ValueError:
        raise _bad(name, "not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)") from None


def explain_full(params: Mapping[str, str]) -> bool:
    """``?explain=full`` on /decide (why each rule that did not fire did not); absent: False."""
    explain = params.get("explain")
    if explain not in (None, "full"):
        raise _bad("explain", "the only value is 'full' (why each rule that did not fire did not)")
    return explain == "full"


def decision_query(params: Mapping[str, str]) -> DecisionQuery:
    """Query-string filters of GET /decisions; 400 naming the parameter when one is wrong."""
    query = decode_query(params, DecisionQuery)
    for name in ("since", "until"):
        if value := getattr(query, name):
            query_time(name, value)  # checked here for the 400; the store normalizes the time itself
    return query


def pending_limit(params: Mapping[str, str]) -> int:
    """``?limit=`` of GET /operations/decisions/pending (1 to 500, default 100)."""
    return decode_query(params, PendingQuery).limit


def _length(text: str) -> timedelta:
    match = _WINDOW.match(text)
    if not match:
        raise _bad("window", "a positive whole number and a unit s, m, h or d (e.g. 15m, 1h, 7d)")
    length = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if length > MAX_WINDOW:
        raise _bad("window", f"at most {MAX_WINDOW.days} days")
    return length


def dashboard_window(params: Mapping[str, str], at: str) -> tuple[str, str]:
    """[since, until) from ``?window=`` (default 1h, ending ``at``) or ``?since=`` and ``?until=``."""
    query = decode_query(params, DashboardQuery)
    if query.window is not None and query.since is not None:
        raise _bad("window", "give either window or since, not both")
    until = query_time("until", query.until) if query.until else at
    if query.since is not None:
        since = query_time("since", query.since)
    else:
        length = _length(query.window or DEFAULT_WINDOW)
        try:
            since = (datetime.fromisoformat(until) - length).isoformat(timespec="microseconds")
        except OverflowError:
            raise _bad("until", "too early: the window would start before year 1") from None
    if since >= until:
        raise _bad("since", "must be before until")
    return since, until

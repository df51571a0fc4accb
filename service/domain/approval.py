"""When a decision that waits for a person stops waiting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain.record import later, normalize_time
from service.domain.ruleset import DEFAULT_APPROVAL_EXPIRY_S


def approval_expires_at(record: Mapping[str, Any]) -> str:
    """The expiry of a decision record pending approval, in the log's time format: its approval
    terms' ``expires_at``, or the default hour after it was decided for a record without terms
    (one not written by the decision service)."""
    terms = record.get("approval") or {}
    return normalize_time(terms.get("expires_at") or later(record["created_at"], DEFAULT_APPROVAL_EXPIRY_S))

"""When a decision that waits for a person stops waiting."""

from __future__ import annotations

import msgspec

from service.domain.record import DecisionRecord, later, normalize_time
from service.domain.ruleset import DEFAULT_APPROVAL_EXPIRY_S


def approval_expires_at(record: DecisionRecord) -> str:
    """The expiry of a decision record pending approval, in the log's time format: its approval
    terms' ``expires_at``, or the default hour after it was decided for a record without terms
    (one not written by the decision service)."""
    if isinstance(record.approval, msgspec.UnsetType):
        return normalize_time(later(record.created_at, DEFAULT_APPROVAL_EXPIRY_S))
    return normalize_time(record.approval.expires_at)

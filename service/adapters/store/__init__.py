"""The decision log's storage: the only package that talks to SQLite or PostgreSQL."""

from __future__ import annotations

from service.adapters.store.dialect import Timeouts
from service.adapters.store.log import StoreLog, open_log
from service.adapters.store.verify import verify_log

__all__ = ["StoreLog", "Timeouts", "open_log", "verify_log"]

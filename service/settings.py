"""Settings: read once (CLI flags over environment over defaults), then passed explicitly."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from service.errors import OpsgateError

DEFAULT_MAX_BODY = 1024 * 1024


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    rules_dir: Path = Path("rules")
    rego_dir: Path = Path("rego")
    db: str = "var/decisions.db"  # a SQLite file, or a postgresql:// URL
    writer_id: str = msgspec.field(default_factory=socket.gethostname)  # this replica's chain in the log
    default_ruleset: str = "ops"
    opa_bin: str | None = None
    opa_url: str | None = None
    opa_timeout_ms: float = 100.0
    opa_restart_backoff_s: float = 0.2
    opa_batch_window_ms: float = 0.5  # concurrent guardrail queries share one OPA query; 0 turns it off
    max_body_bytes: int = DEFAULT_MAX_BODY
    shadow: Path | None = None  # serve: a candidate (rules/ and rego/) decided beside the live version
    watch: bool = False  # serve: reload when rules/ or rego/ change on disk
    watch_interval_s: float = 1.0
    bench_log_off: bool = False  # BENCHMARK ONLY: the decision log answers without writing (bench/)


def _flag(text: str) -> bool:
    """An on/off variable: 1/true/yes/on or 0/false/no/off."""
    value = text.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("expected 1/true/yes/on or 0/false/no/off")
    return value in ("1", "true", "yes", "on")


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


# environment variable -> (field, parser)
_ENV: dict[str, tuple[str, Callable[[str], object]]] = {
    "OPSGATE_HOST": ("host", str),
    "OPSGATE_PORT": ("port", int),
    "OPSGATE_RULES_DIR": ("rules_dir", Path),
    "OPSGATE_REGO_DIR": ("rego_dir", Path),
    "OPSGATE_DB": ("db", str),
    "OPSGATE_WRITER_ID": ("writer_id", str),
    "OPSGATE_DEFAULT_RULESET": ("default_ruleset", str),
    "OPSGATE_OPA_BIN": ("opa_bin", str),
    "OPSGATE_OPA_URL": ("opa_url", str),
    "OPSGATE_OPA_TIMEOUT_MS": ("opa_timeout_ms", float),
    "OPSGATE_OPA_RESTART_BACKOFF_S": ("opa_restart_backoff_s", float),
    "OPSGATE_OPA_BATCH_WINDOW_MS": ("opa_batch_window_ms", non_negative),
    "OPSGATE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "OPSGATE_SHADOW": ("shadow", Path),
    "OPSGATE_WATCH": ("watch", _flag),
    "OPSGATE_WATCH_INTERVAL_S": ("watch_interval_s", positive),
    "OPSGATE_BENCH_LOG_OFF": ("bench_log_off", _flag),
}


def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults, then ``OPSGATE_*`` variables, then explicit overrides (CLI flags)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for variable, (field, parse) in _ENV.items():
        if environ.get(variable):
            try:
                values[field] = parse(environ[variable])
            except ValueError as error:
                raise OpsgateError(f"{variable}={environ[variable]!r} is invalid: {error}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]

"""Settings: read once (CLI flags over environment over defaults), then passed explicitly."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from service.errors import InvalidSettings

DEFAULT_MAX_BODY = 1024 * 1024


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # serve: processes sharing the listening socket (service/cli/workers.py)
    worker: int = 0  # serve --workers N: which worker this process is (0 watches with --watch)
    workers_dir: Path | None = None  # serve --workers N: the supervisor's directory (service/usecases/fleet.py)
    rules_dir: Path = Path("rules")
    rego_dir: Path = Path("rego")
    db: str = "var/decisions.db"  # a SQLite file, or a postgresql:// URL
    writer_id: str = msgspec.field(default_factory=socket.gethostname)  # this replica's chain in the log
    db_connect_timeout_s: float = 5.0  # opening a PostgreSQL connection of the log
    db_statement_timeout_s: float = 30.0  # PostgreSQL statement_timeout; a read running longer is dropped
    db_write_timeout_s: float = 5.0  # a log commit running longer: connection dropped and replaced, 503
    db_keepalive_s: float = 10.0  # TCP keepalive idle and interval on PostgreSQL connections
    default_ruleset: str = "ops"
    opa_bin: str | None = None
    opa_url: str | None = None
    opa_timeout_ms: float = 100.0
    opa_restart_backoff_s: float = 0.2
    opa_batch_window_ms: float = 0.5  # concurrent guardrail queries share one OPA query; 0 turns it off
    opa_breaker_failures: int = 5  # consecutive failed or timed-out OPA queries that open the breaker
    opa_breaker_recovery_s: float = 2.0  # open this long, then half-open
    opa_breaker_probes: int = 1  # queries let through at a time while half-open
    opa_health_interval_s: float = 1.0  # between two checks of OPA's /health
    opa_unhealthy_restart_s: float = 10.0  # an OPA child unhealthy this long is killed and restarted
    max_body_bytes: int = DEFAULT_MAX_BODY
    shadow: Path | None = None  # serve: a candidate (rules/ and rego/) decided beside the live version
    watch: bool = False  # serve: reload when rules/ or rego/ change on disk
    watch_interval_s: float = 1.0
    approval_sweep_s: float = 5.0  # between two passes expiring the pending approvals past their expiry
    api_keys_file: Path | None = None  # YAML: keys: [{name, roles, sha256}] (service/auth/__init__.py)
    api_keys: str | None = None  # name:role+role:sha256hex,...
    require_auth: bool = False  # refuse to start without a key instead of running open
    session_secret: str | None = None  # signs the /ui session cookie; unset: random per process
    session_cookie_secure: bool = False  # the /ui session cookie only over HTTPS
    session_ttl_s: float = 8 * 3600.0
    # requests a second per caller (token bucket); 0 turns it off.  Well above one process's capacity: the limit
    # stops a runaway caller starving the others, and the admission bound (503 overloaded) guards capacity
    rate_limit: float = 20_000.0
    rate_limit_burst: float = 0.0  # bucket size; 0 means one second's worth (rate_limit)
    request_timeout_s: float = 10.0  # a request running longer answers 503 request_timeout; 0 turns it off
    max_json_depth: int = 32  # facts nested deeper answer 422 json_too_deep
    max_list_length: int = 10_000  # a longer list in facts answers 413 payload_too_large
    header_timeout_s: float = 10.0  # serve: a request's headers must arrive within this (408, then closed)
    keep_alive_timeout_s: float = 5.0  # serve: an idle kept-alive connection is closed after this
    max_header_bytes: int = 32 * 1024  # serve: a larger request line and headers answer 431, then closed
    max_connections: int = 1000  # serve: open connections per process; more are answered 503 and closed
    trusted_proxies: str = ""  # addresses/networks whose X-Forwarded-For/-Proto are believed; none by default
    max_in_flight: int = 64  # decisions one process decides at a time; past it 503 overloaded (a batch: its items)
    redaction_key_file: Path | None = None  # the key the ``redact:`` fields are hashed under (a file)
    redaction_key: str | None = None  # the key itself, instead of a file
    redaction_key_id: str | None = None  # the id the records name the key by; unset: derived from the key
    admission_queue_ms: float = 50.0  # how long a decision may wait for room before it is shed; 0: shed at once
    gc_young: int = 10_000  # serve: allocations between young collections, the start frozen (service/heap.py); 0: off
    # traces (service/adapters/tracing.py), from the standard OTEL_* variables: off unless they configure it
    traces_exporter: str = "none"  # "otlp" (OTLP/HTTP), "console", or both comma-separated; "none": off
    otel_service_name: str = "opsgate"  # the traces' service.name
    checkpoints_dir: str | None = None  # signed checkpoints; default: checkpoints/ beside a SQLite db, else var/
    signing_key_file: Path | None = None  # the Ed25519 private key (PEM) that signs checkpoints; none: unsigned
    signing_key: str | None = None  # the same key as PEM text or its base64 32-byte seed (over signing_key_file)
    checkpoint_interval_s: float = 10.0  # between two checkpoints while there are new records
    export_config: Path | None = None  # serve: YAML naming the export sinks fed from the log (docs/export.md)
    context_budget_ms: float = 200.0  # one decision's time for all its context providers together (docs/context.md)
    executors: Path | None = None  # YAML: an HTTP executor per action type for approved actions (docs/executors.md)


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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a whole number, 1 or more")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def proxies(text: str) -> str:
    """A comma-separated list of proxy addresses or networks (or ``*``), checked, as uvicorn takes it."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        if item != "*":
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad item
    return ",".join(items)


# environment variable -> (field, parser)
_ENV: dict[str, tuple[str, Callable[[str], object]]] = {
    "OPSGATE_HOST": ("host", str),
    "OPSGATE_PORT": ("port", int),
    "OPSGATE_WORKERS": ("workers", positive_int),
    "OPSGATE_RULES_DIR": ("rules_dir", Path),
    "OPSGATE_REGO_DIR": ("rego_dir", Path),
    "OPSGATE_DB": ("db", str),
    "OPSGATE_WRITER_ID": ("writer_id", str),
    "OPSGATE_DB_CONNECT_TIMEOUT_S": ("db_connect_timeout_s", positive),
    "OPSGATE_DB_STATEMENT_TIMEOUT_S": ("db_statement_timeout_s", positive),
    "OPSGATE_DB_WRITE_TIMEOUT_S": ("db_write_timeout_s", positive),
    "OPSGATE_DB_KEEPALIVE_S": ("db_keepalive_s", positive),
    "OPSGATE_DEFAULT_RULESET": ("default_ruleset", str),
    "OPSGATE_OPA_BIN": ("opa_bin", str),
    "OPSGATE_OPA_URL": ("opa_url", str),
    "OPSGATE_OPA_TIMEOUT_MS": ("opa_timeout_ms", positive),
    "OPSGATE_OPA_RESTART_BACKOFF_S": ("opa_restart_backoff_s", float),
    "OPSGATE_OPA_BATCH_WINDOW_MS": ("opa_batch_window_ms", non_negative),
    "OPSGATE_OPA_BREAKER_FAILURES": ("opa_breaker_failures", positive_int),
    "OPSGATE_OPA_BREAKER_RECOVERY_S": ("opa_breaker_recovery_s", positive),
    "OPSGATE_OPA_BREAKER_PROBES": ("opa_breaker_probes", positive_int),
    "OPSGATE_OPA_HEALTH_INTERVAL_S": ("opa_health_interval_s", positive),
    "OPSGATE_OPA_UNHEALTHY_RESTART_S": ("opa_unhealthy_restart_s", positive),
    "OPSGATE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "OPSGATE_SHADOW": ("shadow", Path),
    "OPSGATE_WATCH": ("watch", _flag),
    "OPSGATE_WATCH_INTERVAL_S": ("watch_interval_s", positive),
    "OPSGATE_APPROVAL_SWEEP_S": ("approval_sweep_s", positive),
    "OPSGATE_API_KEYS_FILE": ("api_keys_file", Path),
    "OPSGATE_API_KEYS": ("api_keys", str),
    "OPSGATE_REQUIRE_AUTH": ("require_auth", _flag),
    "OPSGATE_SESSION_SECRET": ("session_secret", str),
    "OPSGATE_SESSION_COOKIE_SECURE": ("session_cookie_secure", _flag),
    "OPSGATE_SESSION_TTL_S": ("session_ttl_s", positive),
    "OPSGATE_RATE_LIMIT": ("rate_limit", non_negative),
    "OPSGATE_RATE_LIMIT_BURST": ("rate_limit_burst", non_negative),
    "OPSGATE_REQUEST_TIMEOUT_S": ("request_timeout_s", non_negative),
    "OPSGATE_MAX_JSON_DEPTH": ("max_json_depth", positive_int),
    "OPSGATE_MAX_LIST_LENGTH": ("max_list_length", positive_int),
    "OPSGATE_HEADER_TIMEOUT_S": ("header_timeout_s", positive),
    "OPSGATE_KEEP_ALIVE_TIMEOUT_S": ("keep_alive_timeout_s", positive),
    "OPSGATE_MAX_HEADER_BYTES": ("max_header_bytes", positive_int),
    "OPSGATE_MAX_CONNECTIONS": ("max_connections", positive_int),
    "OPSGATE_TRUSTED_PROXIES": ("trusted_proxies", proxies),
    "OPSGATE_MAX_IN_FLIGHT": ("max_in_flight", positive_int),
    "OPSGATE_ADMISSION_QUEUE_MS": ("admission_queue_ms", non_negative),
    "OPSGATE_GC_YOUNG": ("gc_young", non_negative_int),
    "OPSGATE_REDACTION_KEY_FILE": ("redaction_key_file", Path),
    "OPSGATE_REDACTION_KEY": ("redaction_key", str),
    "OPSGATE_REDACTION_KEY_ID": ("redaction_key_id", str),
    "OPSGATE_CHECKPOINTS_DIR": ("checkpoints_dir", str),
    "OPSGATE_SIGNING_KEY_FILE": ("signing_key_file", Path),
    "OPSGATE_SIGNING_KEY": ("signing_key", str),
    "OPSGATE_CHECKPOINT_INTERVAL_S": ("checkpoint_interval_s", positive),
    "OPSGATE_EXPORT_CONFIG": ("export_config", Path),
    "OPSGATE_CONTEXT_BUDGET_MS": ("context_budget_ms", positive),
    "OPSGATE_EXECUTORS": ("executors", Path),
}


TRACE_EXPORTERS = ("otlp", "console")


def _traces(environ: Mapping[str, str]) -> dict[str, object]:
    """The tracing settings from the OpenTelemetry SDK's own variables: on when OTEL_TRACES_EXPORTER
    names an exporter or an OTLP endpoint is set (then "otlp"); OTEL_SDK_DISABLED=true turns it off.
    The SDK reads the rest (endpoint, headers, timeout, the batch processor's delays) itself."""
    values: dict[str, object] = {}
    if environ.get("OTEL_SERVICE_NAME"):
        values["otel_service_name"] = environ["OTEL_SERVICE_NAME"]
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return values
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "").split(",")]
    names = [n for n in names if n and n != "none"]
    for name in names:
        if name not in TRACE_EXPORTERS:
            raise InvalidSettings(f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']!r} is invalid: "
                                  f"{name!r} is not one of {', '.join(TRACE_EXPORTERS)}, none")  # fmt: skip
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol not in (None, "", "http/protobuf"):
        raise InvalidSettings(f"OTLP protocol {protocol!r} is not served: opsgate exports OTLP as http/protobuf")
    if names:
        values["traces_exporter"] = ",".join(dict.fromkeys(names))
    return values


def from_env(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults, then ``OPSGATE_*`` (and the OpenTelemetry ``OTEL_*``) variables, then explicit overrides
    (CLI flags)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = _traces(environ)
    for variable, (field, parse) in _ENV.items():
        if environ.get(variable):
            try:
                values[field] = parse(environ[variable])
            except ValueError as error:
                raise InvalidSettings(f"{variable}={environ[variable]!r} is invalid: {error}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


def checkpoints_path(settings: Settings) -> Path:
    """Where checkpoints are kept: ``checkpoints_dir``, else ``checkpoints/`` beside a SQLite log file, else
    ``var/checkpoints`` (a PostgreSQL log)."""
    if settings.checkpoints_dir:
        return Path(settings.checkpoints_dir)
    if "://" in settings.db:
        return Path("var/checkpoints")
    return Path(settings.db.removeprefix("sqlite:")).parent / "checkpoints"

"""``opsgate serve``: its flags, and the HTTP API served by uvicorn in one process or several."""

from __future__ import annotations

import argparse
import functools
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import bootstrap
from service import settings as settings_module
from service.cli.flags import arg, service_flags
from service.cli.workers import Supervisor
from service.settings import Settings
from service.usecases.candidate import candidate_dirs

if TYPE_CHECKING:
    from litestar import Litestar

_batch_window = arg(settings_module.non_negative, "a number of milliseconds, 0 or more")
_seconds = arg(settings_module.positive, "a number of seconds greater than 0")
_count = arg(settings_module.positive_int, "a whole number, 1 or more")
_OPA_FLAGS = (  # serve: the OPA query timeout, circuit breaker and health checks (dest, type, help)
    ("opa_timeout_ms", arg(settings_module.positive, "a number of milliseconds greater than 0"),
     "per-query OPA timeout; a slower answer counts as a failure (default: 100)"),
    ("opa_breaker_failures", _count, "consecutive failed or timed-out OPA queries that open the breaker (default: 5)"),
    ("opa_breaker_recovery_s", _seconds, "seconds the breaker stays open before it lets probes through (default: 2)"),
    ("opa_breaker_probes", _count, "OPA queries let through at a time while the breaker is half-open (default: 1)"),
    ("opa_health_interval_s", _seconds, "seconds between two checks of OPA's /health (default: 1)"),
    ("opa_unhealthy_restart_s", _seconds, "seconds before an unhealthy OPA child is restarted (default: 10)"),
)  # fmt: skip
_CONNECTION_FLAGS = (  # serve: the limits on HTTP connections (service/http/server.py)
    ("header_timeout", "header_timeout_s", _seconds,
     "seconds a request's headers may take to arrive; then 408 and the connection is closed (default: 10)"),
    ("keep_alive_timeout", "keep_alive_timeout_s", _seconds,
     "seconds an idle kept-alive connection stays open (default: 5)"),
    ("max_header_bytes", "max_header_bytes", _count,
     "largest request line and headers, in bytes; larger answers 431 (default: 32768)"),
    ("max_connections", "max_connections", _count,
     "open connections per process; more are answered 503 and closed (default: 1000)"),
)  # fmt: skip
_DB_FLAGS = (  # serve: how long the decision log waits on its database (flag, dest, help)
    ("--db-connect-timeout", "db_connect_timeout_s", "seconds to open a PostgreSQL connection (default: 5)"),
    ("--db-statement-timeout", "db_statement_timeout_s",
     "PostgreSQL statement_timeout in seconds; a log read running longer is dropped (default: 30)"),
    ("--db-write-timeout", "db_write_timeout_s",
     "seconds a log commit may take before its connection is dropped and its writes answer 503 (default: 5)"),
    ("--db-keepalive", "db_keepalive_s", "TCP keepalive idle and interval seconds on PostgreSQL (default: 10)"),
)  # fmt: skip
_ADMISSION_FLAGS = (  # serve: the bound on decisions in flight (dest, type, help)
    ("max_in_flight", _count,
     "decisions decided at a time (a batch counts its items); past it 503 overloaded (default: 64)"),
    ("admission_queue_ms", _batch_window,
     "milliseconds a request may wait for room under --max-in-flight before 503 overloaded (default: 50; 0: none)"),
)  # fmt: skip
_rate = arg(settings_module.non_negative, "a number of requests a second, 0 or more")
_timeout = arg(settings_module.non_negative, "a number of seconds, 0 or more")
_ACCESS_FLAGS = (  # serve: who is believed about the client's address (dest, type, help)
    ("trusted_proxies", arg(settings_module.proxies, "IP addresses or networks (CIDR), comma-separated, or *"),
     "comma-separated proxy addresses or networks whose X-Forwarded-For is believed (default: none)"),
)  # fmt: skip


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="listen address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: 8080)")
    serve.add_argument(
        "--workers", type=_count,
        help="serving processes sharing the port, each with its own OPA child and log chain (default: 1)",
    )  # fmt: skip
    serve.add_argument(
        "--shadow", type=Path, help="a candidate (DIR/rules, DIR/rego) decided beside each request; GET /admin/shadow"
    )
    serve.add_argument(
        "--watch", action="store_true", default=None, help="reload when rules/ or rego/ change (default: off)"
    )
    serve.add_argument(
        "--watch-interval", dest="watch_interval_s", type=_seconds, help="seconds between --watch polls (default: 1)"
    )
    serve.add_argument(
        "--opa-batch-window-ms", dest="opa_batch_window_ms", type=_batch_window,
        help="concurrent guardrail queries arriving within this window share one OPA query (default: 0.5; 0: off)",
    )  # fmt: skip
    serve.add_argument(
        "--rate-limit", dest="rate_limit", type=_rate,
        help="requests a second per caller before 429 rate_limited (default: 20000, above one process's capacity, "
        "so one caller at full load is not refused; 0: off)",
    )  # fmt: skip
    serve.add_argument(
        "--request-timeout", dest="request_timeout_s", type=_timeout,
        help="seconds before a request answers 503 request_timeout (default: 10; 0: off)",
    )  # fmt: skip
    serve.add_argument(
        "--api-keys-file", dest="api_keys_file", type=Path,
        help="YAML file of API keys (keys: [{name, roles, sha256}]); see `opsgate keys new`",
    )  # fmt: skip
    serve.add_argument(
        "--require-auth", dest="require_auth", action="store_true", default=None,
        help="refuse to start without an API key instead of running in open development mode",
    )  # fmt: skip
    _table_flags(serve)
    service_flags(serve)


def _table_flags(serve: argparse.ArgumentParser) -> None:
    """The flags kept in the tables above (admission, proxies, the OPA client, connections, the log's timeouts)
    and the export and executors configs."""
    for dest, kind, text in (*_ADMISSION_FLAGS, *_ACCESS_FLAGS, *_OPA_FLAGS):
        serve.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, help=text)
    for name, dest, kind, text in _CONNECTION_FLAGS:
        serve.add_argument("--" + name.replace("_", "-"), dest=dest, type=kind, help=text)
    for flag, dest, text in _DB_FLAGS:
        serve.add_argument(flag, dest=dest, type=_seconds, help=text)
    serve.add_argument(
        "--checkpoints", dest="checkpoints_dir", metavar="DIR",
        help="where each process writes its signed checkpoints (default: checkpoints/ beside the --db file)",
    )  # fmt: skip
    serve.add_argument(
        "--export-config", dest="export_config", type=Path,
        help="YAML file naming the sinks the log is exported to (NATS JetStream, HTTP); see docs/export.md",
    )  # fmt: skip
    serve.add_argument(
        "--executors", dest="executors", type=Path, metavar="FILE",
        help="YAML file naming an HTTP executor per action type for approved actions; see docs/executors.md",
    )  # fmt: skip


def main(settings: Settings) -> int:
    """Serve the HTTP API (in ``settings.workers`` processes); returns when the server stops."""
    import uvicorn

    from service.http.app import create_app
    from service.http.server import uvicorn_options

    bootstrap.require_redaction_key(settings)  # before any worker or OPA child starts
    if settings.shadow is not None:  # a broken candidate stops serve here, with file:line:column (exit 2)
        bootstrap.candidates(settings).check(*candidate_dirs(settings.shadow))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = uvicorn_options(settings)
    if settings.workers > 1:
        return Supervisor(settings, create_app, functools.partial(_serve_on, options)).run()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **options)
    return 0


def _serve_on(options: dict[str, Any], app: Litestar, sock: socket.socket) -> None:
    """One worker of ``serve --workers N``: the whole service on the socket the supervisor bound, with
    the same connection limits and proxy options (service/http/server.py) as one process."""
    import uvicorn

    if app.logging_config is not None:  # its log writer thread stayed in the parent: start this worker's own
        app.logging_config.configure()
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])

"""The ``opsgate`` command: serve, decide, check, log verify."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from service import auth, bootstrap
from service import settings as settings_module
from service.adapters.store.sql import verify_log
from service.authoring.catalog import load_catalog
from service.cli import replay as replay_command
from service.cli import test as test_command
from service.cli.workers import Supervisor
from service.errors import OpsgateError, Problem, RulesetInvalid
from service.settings import Settings
from service.usecases.candidate import candidate_dirs

if TYPE_CHECKING:
    from litestar import Litestar


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules-dir", type=Path, help="ruleset directory (default: rules)")
    parser.add_argument("--rego-dir", type=Path, help="guardrail policy directory (default: rego)")


def _db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="decision log: a SQLite file path or a postgresql:// URL (default: var/decisions.db)"
    )


def _service_flags(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _db_flag(parser)
    parser.add_argument("--writer-id", help="this replica's chain in the decision log (default: the host name)")
    parser.add_argument("--opa-url", help="use an external OPA server at this URL instead of a child process")
    parser.add_argument("--opa-bin", help="the opa binary (default: OPSGATE_OPA_BIN, PATH, or the cached build)")


def _arg(parse: Callable[[str], float], expected: str) -> Callable[[str], float]:
    """An argparse type from a settings parser: the same rule for a flag as for its variable."""

    def convert(text: str) -> float:
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    return convert


_batch_window = _arg(settings_module.non_negative, "a number of milliseconds, 0 or more")
_seconds = _arg(settings_module.positive, "a number of seconds greater than 0")
_count = _arg(settings_module.positive_int, "a whole number, 1 or more")
_OPA_FLAGS = (  # serve: the OPA query timeout, circuit breaker and health checks (dest, type, help)
    ("opa_timeout_ms", _arg(settings_module.positive, "a number of milliseconds greater than 0"),
     "per-query OPA timeout; a slower answer counts as a failure (default: 100)"),
    ("opa_breaker_failures", _count, "consecutive failed or timed-out OPA queries that open the breaker (default: 5)"),
    ("opa_breaker_recovery_s", _seconds, "seconds the breaker stays open before it lets probes through (default: 2)"),
    ("opa_breaker_probes", _count, "OPA queries let through at a time while the breaker is half-open (default: 1)"),
    ("opa_health_interval_s", _seconds, "seconds between two checks of OPA's /health (default: 1)"),
    ("opa_unhealthy_restart_s", _seconds, "seconds before an unhealthy OPA child is restarted (default: 10)"),
)  # fmt: skip
_rate = _arg(settings_module.non_negative, "a number of requests a second, 0 or more")
_timeout = _arg(settings_module.non_negative, "a number of seconds, 0 or more")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsgate", description="Policy-as-code decision service.")
    commands = parser.add_subparsers(dest="command", required=True)

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
        help="requests a second per caller before 429 rate_limited (default: 1000; 0: off)",
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
    for dest, kind, text in _OPA_FLAGS:
        serve.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, help=text)
    _service_flags(serve)

    decide = commands.add_parser("decide", help="decide once, locally, and print the JSON response")
    decide.add_argument("file", help="a JSON file of facts, or - for standard input")
    decide.add_argument("--ruleset", help="ruleset name (default: ops)")
    decide.add_argument("--explain", action="store_true", help="also say why each rule that did not fire did not")
    _service_flags(decide)

    check = commands.add_parser("check", help="check rulesets and policies; file:line:column on error")
    _common(check)
    check.add_argument("--opa-bin", help="the opa binary used for `opa check --strict`")

    log = commands.add_parser("log", help="work with the decision log")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    verify = log_commands.add_parser("verify", help="walk every hash chain; non-zero exit on the first bad record")
    _db_flag(verify)

    test = commands.add_parser("test", help=test_command.HELP, description=test_command.DESCRIPTION)
    _service_flags(test)
    test_command.add_arguments(test)

    replay_command.add_parser(commands)

    keys = commands.add_parser("keys", help="API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="print a new random key once, and its entry (hash only) for the config")
    new.add_argument("--name", required=True, help="who holds the key: logged as the caller of its requests")
    new.add_argument("--roles", required=True, help=f"comma-separated, of: {', '.join(auth.ROLES)}")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """Every flag whose destination is a Settings field overrides its variable (no list to keep in step)."""
    flags = {name: value for name, value in vars(args).items() if name in Settings.__struct_fields__}
    return settings_module.from_env(**flags)


def cmd_serve(settings: Settings) -> int:
    import uvicorn

    from service.http.app import create_app

    if settings.shadow is not None:  # a broken candidate stops serve here, with file:line:column (exit 2)
        bootstrap.candidates(settings).check(*candidate_dirs(settings.shadow))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1:
        return Supervisor(settings, create_app, _serve_on).run()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **_UVICORN)
    return 0


_UVICORN: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "access_log": False, "log_level": "info"}


def _serve_on(app: Litestar, sock: socket.socket) -> None:
    """One worker of ``serve --workers N``: the whole service on the socket the supervisor bound."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, **_UVICORN)).run(sockets=[sock])


def cmd_decide(settings: Settings, file: str, ruleset: str | None, explain: bool = False) -> int:
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()

    async def run() -> bytes:
        running = await bootstrap.start(settings)
        try:
            response = await running.runtime.service.decide(
                ruleset or settings.default_ruleset, body, f"cli:{getpass.getuser()}", explain_full=explain
            )
            return msgspec.json.format(msgspec.json.encode(response), indent=2)
        finally:
            await running.close()

    sys.stdout.write(asyncio.run(run()).decode() + "\n")
    return 0


def cmd_check(settings: Settings) -> int:
    problems: list[Problem] = []
    count = 0
    try:
        catalog = load_catalog(settings.rules_dir, settings.rego_dir)
        count = sum(len(rs.rules) for rs in catalog.rulesets.values())
        problems.extend(catalog.warnings)
    except RulesetInvalid as error:
        problems.extend(error.problems)
    problems.extend(bootstrap.policy_problems(settings))
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    warned = f", {len(problems)} warning(s)" if problems else ""
    print(f"ok: {count} rules in {settings.rules_dir}, policies in {settings.rego_dir}{warned}")
    return 0


def cmd_log_verify(settings: Settings) -> int:
    report = verify_log(settings.db)
    print(report, file=sys.stdout if report.intact else sys.stderr)
    return 0 if report.intact else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return cmd_serve(settings)
        if args.command == "decide":
            return cmd_decide(settings, args.file, args.ruleset, args.explain)
        if args.command == "test":
            return test_command.main(settings, args)
        if args.command == "log":
            return cmd_log_verify(settings)
        if args.command == "replay":
            return replay_command.main(settings, args)
        if args.command == "keys":
            return auth.print_new_key(args.name, args.roles)
        return cmd_check(settings)
    except OpsgateError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"opsgate: {error.message}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"opsgate: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``opsgate`` command: its parser, the settings from its flags, and each command run; serve,
decide, test and replay have a module each, check, log verify and keys are short enough to stay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service import bootstrap
from service import settings as settings_module
from service.auth.keys import ROLES
from service.authoring.catalog import load_catalog
from service.cli import decide as decide_command
from service.cli import export as export_command
from service.cli import log as log_command
from service.cli import replay as replay_command
from service.cli import serve as serve_command
from service.cli import test as test_command
from service.cli.flags import common, service_flags
from service.cli.keys import print_new_key
from service.errors import OpsgateError, Problem, RulesetInvalid
from service.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsgate", description="Policy-as-code decision service.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_command.add_parser(commands)
    decide_command.add_parser(commands)

    check = commands.add_parser("check", help="check rulesets and policies; file:line:column on error")
    common(check)
    check.add_argument("--opa-bin", help="the opa binary used for `opa check --strict`")

    log = commands.add_parser("log", help="work with the decision log")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    log_command.add_parsers(log_commands)
    export_command.add_parser(log_commands)

    test = commands.add_parser("test", help=test_command.HELP, description=test_command.DESCRIPTION)
    service_flags(test)
    test_command.add_arguments(test)

    replay_command.add_parser(commands)

    keys = commands.add_parser("keys", help="API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="print a new random key once, and its entry (hash only) for the config")
    new.add_argument("--name", required=True, help="who holds the key: logged as the caller of its requests")
    new.add_argument("--roles", required=True, help=f"comma-separated, of: {', '.join(ROLES)}")
    signing = keys_commands.add_parser("signing", help="make the Ed25519 key that signs checkpoints, and its .pub")
    signing.add_argument("--out", type=Path, required=True, help="where to write the private key (PEM, mode 0600)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """Every flag whose destination is a Settings field overrides its variable (no list to keep in step)."""
    flags = {name: value for name, value in vars(args).items() if name in Settings.__struct_fields__}
    return settings_module.from_env(**flags)


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


def cmd_log(settings: Settings, args: argparse.Namespace) -> int:
    if args.log_command == "prove":
        return log_command.print_proof(settings, args.decision_id, args.from_size)
    if args.log_command == "check-proof":
        return log_command.check_proof(args.proof, args.public_key, args.earlier)
    return log_command.verify(settings, args.public_key)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return serve_command.main(settings)
        if args.command == "decide":
            return decide_command.main(settings, args.file, args.ruleset, args.explain)
        if args.command == "test":
            return test_command.main(settings, args)
        if args.command == "log" and args.log_command == "export":
            return export_command.main(settings, args.since, args.out)
        if args.command == "log":
            return cmd_log(settings, args)
        if args.command == "replay":
            return replay_command.main(settings, args)
        if args.command == "keys" and args.keys_command == "signing":
            return log_command.new_signing_key(args.out)
        if args.command == "keys":
            return print_new_key(args.name, args.roles)
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

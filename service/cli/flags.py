"""Flags several commands share, and argparse types made from the settings' own parsers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules-dir", type=Path, help="ruleset directory (default: rules)")
    parser.add_argument("--rego-dir", type=Path, help="guardrail policy directory (default: rego)")


def db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="decision log: a SQLite file path or a postgresql:// URL (default: var/decisions.db)"
    )


def service_flags(parser: argparse.ArgumentParser) -> None:
    common(parser)
    db_flag(parser)
    parser.add_argument("--writer-id", help="this replica's chain in the decision log (default: the host name)")
    parser.add_argument("--opa-url", help="use an external OPA server at this URL instead of a child process")
    parser.add_argument("--opa-bin", help="the opa binary (default: OPSGATE_OPA_BIN, PATH, or the cached build)")


def arg(parse: Callable[[str], T], expected: str) -> Callable[[str], T]:
    """An argparse type from a settings parser: the same rule for a flag as for its variable."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    return convert

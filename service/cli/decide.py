"""``opsgate decide``: decide once, locally (the real engine, OPA and decision log), and print the response."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from pathlib import Path

import msgspec

from service import bootstrap
from service.cli.flags import service_flags
from service.http.envelope import envelope
from service.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    decide = commands.add_parser("decide", help="decide once, locally, and print the JSON response")
    decide.add_argument("file", help="a JSON file of facts, or - for standard input")
    decide.add_argument("--ruleset", help="ruleset name (default: ops)")
    decide.add_argument("--explain", action="store_true", help="also say why each rule that did not fire did not")
    service_flags(decide)


def main(settings: Settings, file: str, ruleset: str | None, explain: bool = False) -> int:
    """Decide the facts in ``file`` (- for standard input) once, logged, and print the JSON response."""
    body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()

    async def run() -> bytes:
        running = await bootstrap.start(settings)
        try:
            started = time.perf_counter()
            service = running.runtime.service
            chosen = service.catalog.get(ruleset or settings.default_ruleset)
            facts = chosen.decoder.decode_json(body, service.json_limits)
            response = await service.decide_facts(
                chosen, facts, f"cli:{getpass.getuser()}", started=started, explain_full=explain
            )
            return msgspec.json.format(msgspec.json.encode(envelope(response)), indent=2)
        finally:
            await running.close()

    sys.stdout.write(asyncio.run(run()).decode() + "\n")
    return 0

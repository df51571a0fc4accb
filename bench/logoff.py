"""``python -m bench.logoff serve [opsgate serve flags]``: ``opsgate serve`` with the decision log off.

BENCHMARK ONLY (bench/run.py's log-off row): every decision is answered without being recorded, to
measure what the log costs a request.  The service has no such switch: this entry builds the very
app ``opsgate serve`` builds, through ``create_app``'s ``log_factory``, with a records store that
writes nothing.  The rest of the log (versions, sessions, approvals) is the real one.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from service.adapters.store import StoreLog, open_log
from service.cli.main import build_parser
from service.domain.record import DecisionQuery, Head, Record, StoredRecord
from service.ports.log import RecordStore
from service.settings import Settings, from_env

#: What every append answers: no id, no place in any chain.
UNLOGGED = StoredRecord(0, "", 0, "", "", "", "", "", "", "", None, None, None, None, None, None)
OFF = " (OFF: python -m bench.logoff, nothing is written)"


class UnloggedRecords:
    """A records store whose appends write nothing; reads go to the real store (which stays empty)."""

    def __init__(self, real: RecordStore) -> None:
        self.real = real

    @property
    def writer(self) -> str:
        return self.real.writer

    async def append(self, payload: Record) -> StoredRecord:
        return UNLOGGED

    async def append_many(self, payloads: list[Record]) -> list[StoredRecord]:
        return [UNLOGGED] * len(payloads)

    async def get(self, decision_id: str) -> list[StoredRecord]:
        return await self.real.get(decision_id)

    async def query(self, query: DecisionQuery) -> tuple[list[StoredRecord], str | None]:
        return await self.real.query(query)

    async def heads(self) -> list[Head]:
        return await self.real.heads()


def open_unlogged(settings: Settings) -> StoreLog:
    """The log ``settings`` name, with its records switched off (and its description saying so)."""
    log = open_log(settings.db, settings.writer_id)
    return dataclasses.replace(log, records=UnloggedRecords(log.records), description=log.description + OFF)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from service.http.app import create_app
    from service.http.server import uvicorn_options

    args = build_parser().parse_args(argv)
    if args.command != "serve":
        sys.exit("usage: python -m bench.logoff serve [opsgate serve flags]")
    settings = from_env(**{k: v for k, v in vars(args).items() if k in Settings.__struct_fields__})
    if settings.workers != 1 or settings.shadow is not None:
        sys.exit("bench.logoff serves one worker without a shadow candidate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings, log_factory=open_unlogged)
    uvicorn.run(app, host=settings.host, port=settings.port, **uvicorn_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

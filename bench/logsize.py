"""The SQLite decision log's bytes per decision through the real service, and where they go.

``python -m bench.logsize [--decisions 2000] [--clients 8]`` starts ``opsgate serve`` on a fresh
SQLite log, sends a warm-up and then ``--decisions`` varied /decide requests from ``--clients``
threads, and prints the log's growth (``page_count * page_size``) per decision, each table's and
index's share of it (SQLite's ``dbstat``), and the CPU of storing and reading one decision body
(``service.adapters.store.bodies``: compress against a dictionary, decode) over the logged bodies.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.run import FACTS
from bench.servers import ROOT, http, start_service
from bench.usage import sqlite_bytes
from service.adapters.opa.binary import find_opa

WARMUP = 50


def facts(n: int) -> bytes:
    """FACTS with what differs between a service's calls: history, capacity, the resource."""
    varied: dict[str, Any] = json.loads(json.dumps(FACTS))
    varied["history"] = {"failures": n % 3, "latency": 200 + n % 700}
    varied["resource"].update(id=f"worker-{n % 500:03d}", capacity=50 + n % 50)
    return json.dumps(varied).encode()


def decide(base: str, numbers: range, clients: int) -> None:
    def one(n: int) -> None:
        status, answer = http("POST", base + "/decide", facts(n))
        if status != 200:
            raise RuntimeError(f"/decide answered {status}: {answer}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, numbers))


def breakdown(db: str) -> dict[str, int]:
    """Bytes of each table and index (pages in use), largest first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    connection.close()
    return {str(name): int(size) for name, size in rows}


def codec_us(db: str, limit: int = 2000) -> tuple[float, float]:
    """µs to compress one logged decision body against its dictionary, and to decode one (warm cache)."""
    from service.adapters.store.bodies import Encoder, decoded, register

    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    register(connection)
    query = "SELECT body, opsgate_body(body) FROM log_entries WHERE kind = 'decision' LIMIT ?"
    rows = connection.execute(query, (limit,)).fetchall()
    stored, texts = [body for body, _ in rows], [str(text) for _, text in rows]
    encoder, scratch = Encoder("sqlite"), sqlite3.connect(":memory:")
    scratch.execute("CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, content BLOB NOT NULL)")
    started = time.perf_counter()
    for text in texts:
        encoder.encode(scratch, "decision", ("ops", "v"), text)
    encode = (time.perf_counter() - started) / len(texts) * 1e6
    decoded(connection, next(b for b in stored if isinstance(b, bytes)))  # the dictionary, cached
    started = time.perf_counter()
    for value in stored:
        decoded(connection, value)
    decode = (time.perf_counter() - started) / len(stored) * 1e6
    connection.close()
    return round(encode, 1), round(decode, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logsize")
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    opsgate = str(Path(sys.executable).with_name("opsgate"))
    with tempfile.TemporaryDirectory(prefix="opsgate-logsize-") as tmp:
        work, db = Path(tmp), str(Path(tmp) / "decisions.db")
        server = start_service("logsize", opsgate, ROOT / "rules", ROOT / "rego", db, work, find_opa(None), False)
        try:
            server.wait_ready(60)
            decide(server.base, range(WARMUP), args.clients)
            before = sqlite_bytes(db)
            decide(server.base, range(WARMUP, WARMUP + args.decisions), args.clients)
            after = sqlite_bytes(db)
        finally:
            server.close()
        print(f"{(after - before) / args.decisions:,.0f} bytes per decision ({args.decisions:,} decisions)")
        total = WARMUP + args.decisions
        for name, size in breakdown(db).items():
            print(f"  {name:32} {size / total:8,.0f} B/decision")
        encode, decode = codec_us(db)
        print(f"body storage CPU: {encode} µs to compress one, {decode} µs to decode one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

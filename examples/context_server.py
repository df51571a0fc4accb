"""A tiny context source for trying opsgate's context providers (docs/context.md).

    python examples/context_server.py            # serves http://127.0.0.1:9000
    python examples/context_server.py --port 9100

GET /history/<resource id> answers that resource's failure history as JSON, the fact group
``history`` of the ops ruleset; an unknown resource answers 404.  Each request is printed, so
the cache is seen at work: a repeat within ``cache_s`` never arrives here.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

HISTORY = {
    "worker-001": {"failures": 0, "latency": 500},
    "worker-002": {"failures": 5, "latency": 1200},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        prefix = "/history/"
        found = HISTORY.get(unquote(self.path[len(prefix) :])) if self.path.startswith(prefix) else None
        body = json.dumps(found if found is not None else {"error": "unknown resource"}).encode()
        self.send_response(200 if found is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
        print(f"context source: {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"context source on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

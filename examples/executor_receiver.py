"""A tiny executor for opsgate's approved actions (docs/executors.md), with the standard library only.

    OPSGATE_EXECUTOR_SECRET=dev-executor-secret python3 examples/executor_receiver.py --port 9090

It checks each POST's X-Opsgate-Signature (HMAC-SHA256 of the body with the shared secret; 401
otherwise), acts once per Idempotency-Key (a repeated delivery is answered as before, not done
again), prints one line per action, and answers the outcome opsgate records:
{"status": "SUCCEEDED", "detail": "..."}.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("OPSGATE_EXECUTOR_SECRET", "").encode()
DONE: dict[str, bytes] = {}  # Idempotency-Key -> the answer given (kept in memory: a real executor stores it)
LOCK = threading.Lock()


class Executor(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Opsgate-Signature", "")):
            self._answer(401, {"error": "bad signature"})
            return
        key = self.headers.get("Idempotency-Key", "")
        with LOCK:
            if key in DONE:
                print(f"again {key}: already done", flush=True)
                self._answer(200, json.loads(DONE[key]))
                return
            item = json.loads(body)
            action = item["action"]
            print(f"done  {key}: {action['type']} {json.dumps(action, sort_keys=True)}", flush=True)
            answer = {"status": "SUCCEEDED", "detail": f"{action['type']} done by the example executor"}
            DONE[key] = json.dumps(answer).encode()
        self._answer(200, answer)

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9090)
    args = parser.parse_args()
    if not SECRET:
        print("set OPSGATE_EXECUTOR_SECRET to the secret opsgate signs with", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Executor)
    print(f"executor listening on http://127.0.0.1:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shedding middleware: decide calls refused before the stack when a process has no room; nothing else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from service.http.limits import shed_when_full
from service.usecases.admission import Admission


def call(admission: Admission, method: str, path: str) -> tuple[list[dict[str, Any]], bool]:
    """The messages the middleware sent for one request, and whether the app behind it was called."""
    reached = False
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reached
        reached = True

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        scope = {"type": "http", "method": method, "path": path}
        await shed_when_full(admission)(app)(scope, receive, send)

    asyncio.run(run())
    return sent, reached


def full() -> Admission:
    admission = Admission(1, queue_s=0)
    admission.in_flight = 1  # as if one decision were being decided
    return admission


@pytest.mark.parametrize("path", ["/decide", "/decide/ops", "/decide/batch", "/decide/ops/batch", "/run"])
def test_a_decide_call_is_answered_503_overloaded_before_the_app_when_there_is_no_room(path: str) -> None:
    admission = full()
    sent, reached = call(admission, "POST", path)
    assert not reached
    start, body = sent
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json" and headers[b"retry-after"] == b"1"
    error = json.loads(body["body"])
    assert error["status"] == "error" and error["error"]["code"] == "overloaded"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert admission.stats().shed == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/ready"), ("GET", "/metrics"), ("GET", "/decisions"), ("POST", "/decisions/x/outcome"),
     ("GET", "/decide"), ("POST", "/admin/reload")],
)  # fmt: skip
def test_other_routes_are_never_shed(method: str, path: str) -> None:
    admission = full()
    assert call(admission, method, path) == ([], True)
    assert admission.stats().shed == 0


def test_a_decide_call_goes_on_to_the_handler_while_it_may_still_wait_for_room() -> None:
    admission = Admission(1, queue_s=1.0)
    admission.in_flight = 1
    assert call(admission, "POST", "/decide") == ([], True)

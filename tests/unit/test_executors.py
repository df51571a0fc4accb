"""The executors' pure parts: backoff, the outcome an answer reports, the config file's errors, and
what one delivery attempt does to the outbox (over a fake outbox and a fake executor)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.adapters.executors.config import build_executors, load_executors
from service.domain.record import ActionDelivery, OutcomeRecord, OutcomeReport
from service.errors import InvalidSettings
from service.ports.executors import Answered, ExecutorConfig, ExecutorsConfig, OutboxItem, OutboxState
from service.usecases.executors import Deliverer, backoff_s, reported


def test_the_backoff_doubles_per_failed_attempt_up_to_its_maximum_and_is_drawn_in_its_upper_half() -> None:
    draws: list[tuple[float, float]] = []

    def draw(low: float, high: float) -> float:
        draws.append((low, high))
        return high

    assert [backoff_s(n, 0.5, 3.0, draw) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert set(draws) == {(0.5, 1.0)}
    assert backoff_s(3, 0.5, 3.0, lambda low, high: low) == 1.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"status": "FAILED", "detail": "the process refused to start"}', ("FAILED", "the process refused to start")),
        ('{"status": "CANCELLED"}', ("CANCELLED", "")),
        (
            '{"status": "DONE", "detail": "x"}',
            ("SUCCEEDED", 'executor answered 200: {"status": "DONE", "detail": "x"}'),
        ),
        ("ok", ("SUCCEEDED", "executor answered 200: ok")),
        ("", ("SUCCEEDED", "executor answered 200: ")),
    ],
)
def test_a_2xx_answer_reports_its_own_outcome_or_succeeded(body: str, expected: tuple[str, str]) -> None:
    assert reported(Answered(200, body)) == OutcomeReport(*expected)


def test_an_unknown_field_in_the_executors_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "executors.yaml"
    path.write_text("executors:\n  DEPLOY: {url: 'http://127.0.0.1:9/', secret_env: S, retries: 3}\n")
    with pytest.raises(InvalidSettings) as raised:
        load_executors(path)
    assert raised.value.message == (
        f"executors config {path}: Object contains unknown field `retries` - at `$.executors.DEPLOY`"
    )


def test_a_bad_value_is_named_with_its_action_type_and_field(tmp_path: Path) -> None:
    path = tmp_path / "executors.yaml"
    path.write_text("executors:\n  DEPLOY: {url: 'http://127.0.0.1:9/', secret_env: S, max_attempts: 0}\n")
    with pytest.raises(InvalidSettings) as raised:
        load_executors(path)
    assert raised.value.message == (
        f"executors config {path}: Expected `int` >= 1 - at `$.executors.DEPLOY.max_attempts`"
    )


def test_a_missing_secret_or_a_bad_url_names_the_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "executors.yaml"
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    config = ExecutorsConfig(
        executors={"DEPLOY": ExecutorConfig(url="http://127.0.0.1:9/", secret_env="NO_SUCH_SECRET")}
    )
    with pytest.raises(InvalidSettings) as raised:
        build_executors(config, source)
    assert raised.value.message == (
        f"executors config {source}: the secret in variable NO_SUCH_SECRET is missing or empty"
        " - at `$.executors.DEPLOY`"
    )
    monkeypatch.setenv("A_SECRET", "s3cret")
    config = ExecutorsConfig(executors={"DEPLOY": ExecutorConfig(url="ftp://host/", secret_env="A_SECRET")})
    with pytest.raises(InvalidSettings) as raised:
        build_executors(config, source)
    assert raised.value.message == (
        f"executors config {source}: url must be http:// or https://, got 'ftp://host/' - at `$.executors.DEPLOY`"
    )


class FakeOutbox:
    def __init__(self) -> None:
        self.settled: list[tuple[str, OutboxState, OutcomeRecord]] = []
        self.retried: list[tuple[str, str, str]] = []

    async def due(self, at: str, limit: int) -> list[OutboxItem]:
        return []

    async def settle(self, item: OutboxItem, state: OutboxState, outcome: OutcomeRecord, at: str) -> bool:
        self.settled.append((item.key, state, outcome))
        return True

    async def retry(self, item: OutboxItem, error: str, next_at: str) -> None:
        self.retried.append((item.key, error, next_at))

    async def counts(self) -> dict[str, int]:
        return {"DEAD": 1}

    async def of_decision(self, decision_id: str) -> list[OutboxItem]:
        return []


class FakeExecutor:
    def __init__(self, answer: Answered) -> None:
        self.answer = answer

    async def send(self, item: OutboxItem) -> Answered:
        return self.answer

    async def close(self) -> None:
        pass


def attempt(answer: Answered, attempts_before: int) -> tuple[str, FakeOutbox, list[tuple[str, str]]]:
    config = ExecutorsConfig(executors={"DEPLOY": ExecutorConfig(url="http://x/", max_attempts=3)}, backoff_s=60)
    outbox, seen = FakeOutbox(), []
    deliverer = Deliverer(
        config, {"DEPLOY": FakeExecutor(answer)}, outbox, lambda kind, result: seen.append((kind, result))
    )
    item = OutboxItem("d-1", 0, "DEPLOY", "{}", attempts_before)
    return asyncio.run(deliverer.deliver(item)), outbox, seen


def test_a_2xx_settles_the_action_delivered_with_its_outcome() -> None:
    result, outbox, seen = attempt(Answered(201, '{"status": "SUCCEEDED", "detail": "deployed"}'), 1)
    ((key, state, outcome),) = outbox.settled
    assert (result, key, state, seen) == ("delivered", "d-1:0", "DELIVERED", [("DEPLOY", "delivered")])
    expected = ("d-1", "executor:DEPLOY", OutcomeReport("SUCCEEDED", "deployed"))
    assert (outcome.decision_id, outcome.caller, outcome.outcome) == expected
    assert isinstance(outcome.action, ActionDelivery)
    assert (outcome.action.state, outcome.action.attempts, outcome.action.http_status) == ("DELIVERED", 2, 201)


def test_a_failed_attempt_before_the_last_is_retried_later() -> None:
    result, outbox, seen = attempt(Answered(500, "", "POST http://x/: answered 500"), 1)
    ((key, error, next_at),) = outbox.retried
    assert (result, key, error, outbox.settled) == ("retried", "d-1:0", "POST http://x/: answered 500", [])
    assert next_at > "2000"  # the log's time, a backoff of 60 s to 120 s from now


def test_the_last_failed_attempt_makes_a_dead_letter_with_a_failed_outcome() -> None:
    result, outbox, seen = attempt(Answered(None, "", "POST http://x/: ConnectionRefusedError: refused"), 2)
    ((key, state, outcome),) = outbox.settled
    assert (result, state, outbox.retried, seen) == ("dead", "DEAD", [], [("DEPLOY", "dead")])
    assert outcome.outcome == OutcomeReport(
        "FAILED", "not delivered after 3 attempts: POST http://x/: ConnectionRefusedError: refused"
    )

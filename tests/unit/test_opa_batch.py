"""The micro-batcher's logic, over a fake OPA caller whose answers the test releases by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from service.adapters.opa.batch import MicroBatcher
from service.cli.main import _settings, build_parser
from service.errors import OpsgateError
from service.settings import from_env

HOUR = 3600.0  # a window that never passes within a test: only the in-flight query's return flushes


class FakeOpa:
    """Records each query; a query waits until the test opens its gate (all gates open by default)."""

    def __init__(self, held: bool = False, fail: bool = False) -> None:
        self.queries: list[list[str]] = []
        self.gate = asyncio.Event()
        self.fail = fail
        if not held:
            self.gate.set()

    async def send(self, items: list[str]) -> list[str]:
        self.queries.append(list(items))
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("opa is down")
        return [item.upper() for item in items]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=30))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_an_item_arriving_when_idle_is_sent_at_once_alone() -> None:
    async def scenario() -> None:
        opa = FakeOpa()
        batcher = MicroBatcher(opa.send, window_s=HOUR)
        assert await batcher.submit("a") == "A"  # an hour-long window would hang here if it waited
        assert opa.queries == [["a"]]

    run(scenario)


def test_items_arriving_while_a_query_is_out_go_together_when_it_returns() -> None:
    async def scenario() -> None:
        opa = FakeOpa(held=True)
        batcher = MicroBatcher(opa.send, window_s=HOUR)
        first = asyncio.ensure_future(batcher.submit("a"))
        await settle()
        rest = [asyncio.ensure_future(batcher.submit(x)) for x in ("b", "c", "d")]
        await settle()
        assert opa.queries == [["a"]]
        opa.gate.set()
        assert await first == "A"
        assert await asyncio.gather(*rest) == ["B", "C", "D"]
        assert opa.queries == [["a"], ["b", "c", "d"]]
        assert (batcher.queries, batcher.items) == (2, 4)

    run(scenario)


def test_the_window_passing_sends_what_gathered_while_the_first_query_is_still_out() -> None:
    async def scenario() -> None:
        opa = FakeOpa(held=True)
        batcher = MicroBatcher(opa.send, window_s=0.001)
        first = asyncio.ensure_future(batcher.submit("a"))
        await settle()
        second = asyncio.ensure_future(batcher.submit("b"))
        while len(opa.queries) < 2:
            await asyncio.sleep(0.001)
        assert opa.queries == [["a"], ["b"]]
        assert not first.done()
        opa.gate.set()
        assert (await first, await second) == ("A", "B")

    run(scenario)


def test_a_full_batch_is_sent_without_waiting_and_the_rest_waits() -> None:
    async def scenario() -> None:
        opa = FakeOpa(held=True)
        batcher = MicroBatcher(opa.send, window_s=HOUR, max_batch=2)
        waiting = [asyncio.ensure_future(batcher.submit(x)) for x in ("a", "b", "c", "d")]
        await settle()
        assert opa.queries == [["a"], ["b", "c"]]
        opa.gate.set()
        assert await asyncio.gather(*waiting) == ["A", "B", "C", "D"]
        assert opa.queries == [["a"], ["b", "c"], ["d"]]

    run(scenario)


def test_a_failed_query_fails_every_item_in_it() -> None:
    async def scenario() -> None:
        opa = FakeOpa(held=True, fail=True)
        batcher = MicroBatcher(opa.send, window_s=HOUR)
        waiting = [asyncio.ensure_future(batcher.submit(x)) for x in ("a", "b", "c")]
        await settle()
        opa.gate.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert [str(o) for o in outcomes] == ["opa is down"] * 3
        assert all(isinstance(o, ConnectionError) for o in outcomes)
        assert opa.queries == [["a"], ["b", "c"]]

    run(scenario)


def test_a_zero_window_sends_one_query_per_item() -> None:
    async def scenario() -> None:
        opa = FakeOpa()
        batcher = MicroBatcher(opa.send, window_s=0)
        assert await asyncio.gather(*(batcher.submit(x) for x in ("a", "b", "c"))) == ["A", "B", "C"]
        assert opa.queries == [["a"], ["b"], ["c"]]
        assert (batcher.queries, batcher.items) == (3, 3)

    run(scenario)


def test_a_wrong_number_of_answers_fails_the_items_instead_of_misattributing() -> None:
    async def short(items: list[str]) -> list[str]:
        return items[:-1]

    async def scenario() -> None:
        batcher = MicroBatcher(short, window_s=HOUR)
        with pytest.raises(ValueError, match="0 results for 1 items"):
            await batcher.submit("a")

    run(scenario)


def test_the_window_is_half_a_millisecond_by_default_and_read_from_env_then_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert from_env({}).opa_batch_window_ms == 0.5
    assert from_env({"OPSGATE_OPA_BATCH_WINDOW_MS": "0"}).opa_batch_window_ms == 0.0
    monkeypatch.setenv("OPSGATE_OPA_BATCH_WINDOW_MS", "3")
    assert _settings(build_parser().parse_args(["serve"])).opa_batch_window_ms == 3.0
    flagged = _settings(build_parser().parse_args(["serve", "--opa-batch-window-ms", "0.25"]))
    assert flagged.opa_batch_window_ms == 0.25


def test_a_negative_window_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OpsgateError) as caught:
        from_env({"OPSGATE_OPA_BATCH_WINDOW_MS": "-1"})
    assert caught.value.message == "OPSGATE_OPA_BATCH_WINDOW_MS='-1' is invalid: must be 0 or more"
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--opa-batch-window-ms", "soon"])
    assert exited.value.code == 2
    assert "expected a number of milliseconds, 0 or more, got 'soon'" in capsys.readouterr().err


def test_close_waits_for_the_query_that_a_returning_query_starts() -> None:
    async def scenario() -> None:
        opa = FakeOpa(held=True)
        batcher = MicroBatcher(opa.send, window_s=HOUR)
        first = asyncio.ensure_future(batcher.submit("a"))
        await settle()
        rest = [asyncio.ensure_future(batcher.submit(x)) for x in ("b", "c")]
        await settle()
        closing = asyncio.ensure_future(batcher.close())
        await settle()
        opa.gate.set()  # "a" returns, and its return sends "b" and "c" ...
        opa.gate.clear()  # ... whose query is held
        await settle()
        assert opa.queries == [["a"], ["b", "c"]]
        assert not closing.done()
        opa.gate.set()
        await closing
        assert [f.done() for f in (first, *rest)] == [True, True, True]
        assert opa.queries == [["a"], ["b", "c"]]
        assert [f.result() for f in rest] == ["B", "C"]

    run(scenario)

"""Admission control: the bound on decisions in flight, the wait for room, and what is shed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from service.errors import Overloaded
from service.usecases.admission import Admission

LONG = 60.0  # a wait that never runs out within a test


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=30))


async def hold(admission: Admission, decisions: int, release: asyncio.Event, entered: list[int]) -> None:
    async with admission.admitted(decisions):
        entered.append(decisions)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_decisions_up_to_the_bound_are_admitted_and_the_next_is_shed_with_no_queue() -> None:
    async def test() -> None:
        admission = Admission(3, queue_s=0)
        async with AsyncExitStack() as stack:
            for _ in range(3):
                await stack.enter_async_context(admission.admitted(1))
            assert admission.in_flight == 3
            with pytest.raises(Overloaded) as refused:
                await stack.enter_async_context(admission.admitted(1))
        assert admission.in_flight == 0
        assert refused.value.code == "overloaded" and refused.value.status == 503
        assert refused.value.headers() == {"Retry-After": "1"}
        assert "3 decisions in flight, at most 3" in refused.value.message
        stats = admission.stats()
        assert (stats.admitted, stats.shed, stats.in_flight) == (3, 1, 0)

    run(test)


def test_a_batch_counts_its_items_against_the_bound() -> None:
    async def test() -> None:
        admission = Admission(10, queue_s=0)
        async with admission.admitted(6):
            with pytest.raises(Overloaded):
                async with admission.admitted(5):
                    pass
            async with admission.admitted(4):
                assert admission.in_flight == 10
        assert admission.stats().shed == 1

    run(test)


def test_a_batch_heavier_than_the_bound_is_admitted_alone() -> None:
    async def test() -> None:
        admission = Admission(4, queue_s=0)
        async with admission.admitted(1):
            with pytest.raises(Overloaded):
                async with admission.admitted(100):
                    pass
        async with admission.admitted(100):
            assert admission.in_flight == 100
            with pytest.raises(Overloaded):
                async with admission.admitted(1):
                    pass
        assert admission.in_flight == 0

    run(test)


def test_a_request_waits_for_room_and_is_admitted_when_one_leaves() -> None:
    async def test() -> None:
        admission = Admission(1, queue_s=LONG)
        release, entered = asyncio.Event(), list[int]()
        first = asyncio.create_task(hold(admission, 1, release, entered))
        await settle()
        second = asyncio.create_task(hold(admission, 1, asyncio.Event(), entered))
        await settle()
        assert entered == [1] and admission.stats().waiting == 1
        release.set()
        await first
        await settle()
        assert entered == [1, 1] and admission.in_flight == 1 and admission.stats().waiting == 0
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert admission.in_flight == 0

    run(test)


def test_waiters_are_admitted_in_order_and_a_later_light_one_does_not_pass_a_heavy_one() -> None:
    async def test() -> None:
        admission = Admission(4, queue_s=LONG)
        release, entered = asyncio.Event(), list[int]()
        first = asyncio.create_task(hold(admission, 2, release, entered))
        await settle()
        heavy = asyncio.create_task(hold(admission, 3, release, entered))
        await settle()
        light = asyncio.create_task(hold(admission, 1, release, entered))
        await settle()
        assert entered == [2]  # room for one decision is free, but the heavy request came first
        assert admission.stats().waiting == 4
        release.set()
        await asyncio.gather(first, heavy, light)
        assert entered == [2, 3, 1] and admission.in_flight == 0 and admission.stats().waiting == 0

    run(test)


def test_a_request_that_waits_past_the_queue_time_is_shed_and_counted() -> None:
    async def test() -> None:
        admission = Admission(1, queue_s=0.01)
        async with admission.admitted(1):
            with pytest.raises(Overloaded) as refused:
                async with admission.admitted(1):
                    pass
        assert "after waiting 10 ms" in refused.value.message
        stats = admission.stats()
        assert (stats.in_flight, stats.waiting, stats.shed, stats.admitted) == (0, 0, 1, 1)

    run(test)


def test_at_most_the_bound_of_decisions_wait_the_next_is_shed_at_once() -> None:
    async def test() -> None:
        admission = Admission(2, queue_s=LONG)
        release, entered = asyncio.Event(), list[int]()
        holders = [asyncio.create_task(hold(admission, 1, release, entered)) for _ in range(4)]
        await settle()
        assert entered == [1, 1] and admission.stats().waiting == 2
        with pytest.raises(Overloaded) as refused:
            async with admission.admitted(1):
                pass
        assert "no room to wait" in refused.value.message
        release.set()
        await asyncio.gather(*holders)
        assert entered == [1, 1, 1, 1] and admission.in_flight == 0

    run(test)


def test_a_waiter_cancelled_in_the_queue_holds_no_room_and_does_not_block_the_next() -> None:
    async def test() -> None:
        admission = Admission(2, queue_s=LONG)
        release, entered = asyncio.Event(), list[int]()
        first = asyncio.create_task(hold(admission, 2, release, entered))
        await settle()
        gone = asyncio.create_task(hold(admission, 1, asyncio.Event(), entered))
        third = asyncio.create_task(hold(admission, 1, release, entered))
        await settle()
        gone.cancel()
        release.set()  # the first leaves as the second is cancelled, not yet told: the third gets the room
        await asyncio.gather(first, third)
        await asyncio.gather(gone, return_exceptions=True)
        assert entered == [2, 1] and admission.in_flight == 0 and admission.stats().waiting == 0

    run(test)


def test_a_waiter_admitted_as_it_is_cancelled_gives_its_room_back() -> None:
    async def test() -> None:
        admission, entered = Admission(1, queue_s=LONG), list[int]()
        first = admission.admitted(1)
        await first.__aenter__()
        second = asyncio.create_task(hold(admission, 1, asyncio.Event(), entered))
        await settle()
        await first.__aexit__(None, None, None)  # the second is admitted, but has not run yet
        assert admission.in_flight == 1
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert entered == [] and admission.in_flight == 0

    run(test)


def test_check_refuses_before_any_body_is_read_only_when_not_one_decision_could_wait() -> None:
    async def test() -> None:
        admission = Admission(2, queue_s=LONG)
        release, entered = asyncio.Event(), list[int]()
        holders = [asyncio.create_task(hold(admission, 1, release, entered)) for _ in range(3)]
        await settle()
        admission.check()  # full, but one more decision may still wait
        holders.append(asyncio.create_task(hold(admission, 1, release, entered)))
        await settle()
        with pytest.raises(Overloaded) as refused:
            admission.check()
        assert "a request refused with no room to wait" in refused.value.message
        release.set()
        await asyncio.gather(*holders)
        admission.check()
        assert admission.stats().shed == 1

    run(test)

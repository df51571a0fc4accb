"""service/heap.py on this interpreter's own collector: what exists at ``settle`` is frozen and the young
generation's threshold is the one given; ``resettle`` frees the cycles of what was frozen and then
dropped; 0 leaves the collector alone.  The process's collector is put back after each test."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service import heap
from service.errors import OpsgateError
from service.settings import from_env


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    heap.unsettle(threshold)
    yield
    heap.unsettle(threshold)


def test_settle_freezes_what_exists_and_sets_the_young_threshold() -> None:
    older = gc.get_threshold()[1:]
    frozen = heap.settle(5_000)
    assert frozen == gc.get_freeze_count() > 1_000  # at least this test process's modules and objects
    assert gc.get_threshold() == (5_000, *older)
    made_after = [Node() for _ in range(100)]
    assert made_after and gc.get_freeze_count() == frozen  # what is made later is collected as usual


def test_a_cycle_frozen_at_the_start_is_freed_by_resettle_not_by_a_collection() -> None:
    node = Node()
    gone = weakref.ref(node)
    heap.settle(5_000)
    del node  # dropped after the start: frozen, so a plain collection does not see it
    gc.collect()
    assert gone() is not None
    heap.resettle()
    assert gone() is None
    assert gc.get_freeze_count() > 1_000  # and what is still alive is frozen again


def test_young_zero_leaves_the_collector_as_it_was_and_resettle_then_freezes_nothing() -> None:
    threshold = gc.get_threshold()
    assert heap.settle(0) == 0
    assert gc.get_threshold() == threshold
    heap.resettle()
    assert gc.get_freeze_count() == 0


def test_the_setting_defaults_to_10000_and_refuses_a_negative_or_fractional_value() -> None:
    assert from_env({}).gc_young == heap.DEFAULT_YOUNG == 10_000
    assert from_env({"OPSGATE_GC_YOUNG": "0"}).gc_young == 0
    for value, reason in (("-1", "must be a whole number, 0 or more"), ("2.5", "invalid literal for int()")):
        with pytest.raises(OpsgateError) as caught:
            from_env({"OPSGATE_GC_YOUNG": value})
        assert caught.value.message.startswith(f"OPSGATE_GC_YOUNG={value!r} is invalid: {reason}")

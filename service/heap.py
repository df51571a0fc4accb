"""CPython's cyclic garbage collector, set for a long-running server (docs/performance.md#garbage-collection).

With the interpreter's defaults a serving process under load spent about a tenth of its time
collecting: a full collection walked every object made at start (some 100,000: the app, the
rulesets, the libraries), each time pausing the event loop for tens of milliseconds, and the young
generation was collected every 700 allocations while a decision makes thousands.

- ``settle(young)``, once the process has started: what exists then lives as long as the process, so
  it is collected once and moved out of the collector's sight (``gc.freeze``); the young generation is
  collected every ``young`` allocations.  ``young`` 0 leaves the collector as the interpreter set it.
- ``resettle()``, once a replaced version has been retired: the frozen objects are unfrozen, collected
  and frozen again, so that the retired version's reference cycles are freed rather than kept frozen.

The collector is the process's own: so is this module's state.
"""

from __future__ import annotations

import gc

DEFAULT_YOUNG = 10_000  # allocations between two collections of the young generation (CPython's own: 700)

_settled = False


def settle(young: int = DEFAULT_YOUNG) -> int:
    """Freeze what the start made and collect the young generation every ``young`` allocations (0: do
    nothing); returns how many objects are frozen."""
    global _settled
    if young > 0:
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young, older, oldest)
        _settled = True
    return gc.get_freeze_count()


def resettle() -> None:
    """After a version was retired: collect what is frozen too, then freeze again (only once settled)."""
    if _settled:
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def unsettle(threshold: tuple[int, int, int]) -> None:
    """Back to an unfrozen collector with ``threshold`` (the tests' way out)."""
    global _settled
    gc.unfreeze()
    gc.set_threshold(*threshold)
    _settled = False

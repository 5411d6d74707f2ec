"""Python's cyclic garbage collector and a run's long-lived objects (docs/architecture.md
section 7, "Garbage collection").

A run builds most of what it holds once -- the imported modules, every node's identity and
account, the chains' services -- and keeps it to the end. A full collection walks every tracked
object, about once a round, wherever an allocation trips it -- often in a Ray call's argument
unpickling, on the round's critical path. Freezing what setup built (``gc.freeze``) leaves it
out of every later collection (what that saves is measured in the docs section).

Frozen objects are still freed by reference counting as soon as nothing holds them; only
reference cycles among them wait for ``gc.unfreeze``. Results never depend on any of this.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_setup() -> None:
    """What this process holds now is long-lived: collect the garbage, freeze the rest. For a
    process that ends with the run (a Ray actor); called again, it freezes what came since."""
    gc.collect()
    gc.freeze()


@contextmanager
def setup_frozen() -> Iterator[None]:
    """``freeze_setup`` for a run in a process that outlives it (the local runtime, the
    bench, tests): the frozen objects go back to the collector when the run ends, so another
    run in the same process never keeps this one's cycles."""
    freeze_setup()
    try:
        yield
    finally:
        gc.unfreeze()

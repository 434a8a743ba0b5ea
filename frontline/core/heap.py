"""The cycle collector paused around bulk work that makes many small objects and no cycles worth
collecting (a rotation plan, a week of digests): the collections those allocations trigger re-scan
everything alive, which grows with the data loaded (a week of 50,000 observations for 1,000 departments
made each digest's build ~70 % slower than with the collector paused). Reference counting still frees
everything else; whatever cycles were made are collected once the collector runs again."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector paused inside the block (and left as it was found after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def command_heap() -> Iterator[None]:
    """For the body of a command whose process ends soon after (``frontline pair --no-flow``): the cycle
    collector paused inside, as :func:`no_cyclic_gc`, and whatever is still alive when the block ends (the
    modules it imported, caches, the result being printed) moved out of the collector's reach
    (``gc.freeze``) before it runs again. Without that, the first collections after a long pause scan every
    object made in it that is still alive (10k employees: ~0.1 s of CPU after the pairing was written).
    Cycles made inside are never collected (the process ends): never for a server or a long job."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()

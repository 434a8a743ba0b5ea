"""The cycle collector pauses of :mod:`frontline.core.heap`."""

import gc

from frontline.core.heap import command_heap, no_cyclic_gc


def test_no_cyclic_gc_pauses_and_restores():
    assert gc.isenabled()
    with no_cyclic_gc():
        assert not gc.isenabled()
        with no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # left as it was found
    assert gc.isenabled()


def test_command_heap_freezes_what_the_block_leaves_alive():
    """Inside: no collection; after: the collector runs again, and the objects still alive (here 1,000
    lists) are in the permanent generation, out of its scans."""
    gc.collect()
    gc.unfreeze()
    try:
        with command_heap():
            assert not gc.isenabled()
            kept = [[k] for k in range(1_000)]
            assert gc.get_freeze_count() == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
        assert all(gc.is_tracked(x) for x in kept)
    finally:
        gc.unfreeze()

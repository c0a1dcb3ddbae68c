"""The collector is paused while big trees are built, and what was built is frozen afterwards, so the
collections that follow do not walk it (tests here: behaviour, not timing; bench/lsp_latency.py times it)."""

from __future__ import annotations

import ast
import gc
import threading

import pytest
from torchbolt_lsp.analysis import gc_pause
from torchbolt_lsp.analysis.gc_pause import UNFREEZE_EVERY, paused_gc


@pytest.fixture(autouse=True)
def _clean_gc():
    gc.unfreeze()
    gc_pause._freezes = 0
    yield
    gc.unfreeze()
    gc_pause._freezes = 0
    gc.enable()


def test_a_tree_built_in_a_pause_is_frozen_and_the_collector_comes_back():
    with paused_gc():
        assert not gc.isenabled()
        tree = ast.parse("x = 1\n" * 2000)
    assert gc.isenabled()
    assert gc.get_freeze_count() >= sum(1 for _ in ast.walk(tree))
    # frozen objects are still freed by reference counting
    before = gc.get_freeze_count()
    del tree
    assert gc.get_freeze_count() < before


def test_every_nth_pause_hands_the_frozen_objects_back():
    for _ in range(UNFREEZE_EVERY - 1):
        with paused_gc():
            pass
        assert gc.get_freeze_count() > 0
    with paused_gc():
        pass
    assert gc.get_freeze_count() == 0  # back in the oldest generation: cycles among them are collectable again


def test_nested_and_concurrent_pauses_freeze_once_at_the_end_and_respect_a_disabled_collector():
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused_gc():
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=other)
    worker.start()
    entered.wait(5)
    with paused_gc():
        with paused_gc():
            pass
    assert not gc.isenabled() and gc_pause._freezes == 0  # the other thread's pause still holds
    release.set()
    worker.join(5)
    assert gc.isenabled() and gc_pause._freezes == 1
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled() and gc_pause._freezes == 1  # it was off before: left off, nothing frozen

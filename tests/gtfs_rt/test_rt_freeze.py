"""freeze_heap: what a snapshot holds leaves the cyclic collector; frozen cycles are swept."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from aggregator import live
from aggregator.live import LiveData, freeze_heap
from aggregator.model import Snapshot


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the collector as the other tests expect it


class _Node:
    def __init__(self, payload: bytes = b"") -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it
        self.payload = payload


def _snapshot(version: int, data: object) -> Snapshot:
    return Snapshot("rt", "gtfs_rt", version, "h", datetime.now(UTC), data, 0)


def test_frozen_objects_are_skipped_and_a_sweep_collects_frozen_cycles() -> None:
    gc.unfreeze()
    freeze_heap()
    assert gc.get_freeze_count() > 0
    node = _Node()
    freeze_heap()
    assert not any(isinstance(o, _Node) for o in gc.get_objects())  # out of every generation
    del node
    gc.collect()
    assert _frozen_nodes()  # garbage, but a collection does not look at it
    freeze_heap(sweep=True)
    assert not _frozen_nodes()


def _record_sweeps(monkeypatch) -> list[bool]:
    """Every freeze LiveData asks for (True: with a sweep); the real freeze still runs."""
    calls: list[bool] = []

    def recording(sweep: bool = False) -> int:
        calls.append(sweep)
        return freeze_heap(sweep)

    monkeypatch.setattr(live, "freeze_heap", recording)
    return calls


def test_replacing_data_without_cycles_never_sweeps(monkeypatch) -> None:
    """Snapshots replaced by snapshots of their size free their objects by reference counting:
    the frozen heap stays flat and no full collection (a pause of the loop) is run."""
    calls = _record_sweeps(monkeypatch)
    data = LiveData()
    for version in range(1, 301):
        data.adopt(_snapshot(version, [{"stop": str(i), "v": [version]} for i in range(500)]))
    data.adopt(_snapshot(1, {}))  # older: not adopted, nothing frozen
    assert len(calls) == 300
    assert not any(calls)


def test_garbage_cycles_piling_up_are_swept(monkeypatch, caplog) -> None:
    """Data that leaves garbage cycles when replaced (here 2 MB per snapshot) makes the
    process grow: a sweep comes once it has grown past the threshold, and it frees them."""
    # Thresholds of a small process (the share alone depends on what earlier tests left).
    monkeypatch.setattr(live, "SWEEP_GROWTH", 0.0)
    monkeypatch.setattr(live, "SWEEP_MIN_GROWTH", 16 * 1024 * 1024)
    calls = _record_sweeps(monkeypatch)
    caplog.set_level(logging.INFO, logger="aggregator.live")
    data = LiveData()
    adopted = 0
    # Up to 600 MB of cycles: memory the allocator already holds free is reused before the
    # process grows, and earlier tests may have left much of it.
    while not any(calls) and adopted < 300:
        adopted += 1
        data.adopt(_snapshot(adopted, [_Node(b"x" * 20_000) for _ in range(100)]))
    assert any(calls), "no sweep although every adoption left 2 MB in frozen cycles"
    assert data.sweeps == sum(calls)
    assert "heap sweep:" in caplog.text and "unreachable objects collected" in caplog.text
    assert adopted > 4  # 16 MB of growth: not at the first adoptions
    # Only the current snapshot's nodes are still alive after the sweep.
    assert len(_frozen_nodes()) <= 100 * 2
    # More growth right after: no second sweep before SWEEP_MIN_INTERVAL_S has passed.
    for version in range(adopted + 1, adopted + 20):
        data.adopt(_snapshot(version, [_Node(b"x" * 20_000) for _ in range(100)]))
    assert data.sweeps == 1


def _frozen_nodes() -> list[object]:
    # Frozen objects are listed by no generation: unfreeze to see them (no collection runs).
    gc.unfreeze()
    try:
        return [o for o in gc.get_objects() if isinstance(o, _Node)]
    finally:
        gc.freeze()


def test_collection_paused_nests_across_threads_and_restores_the_collector() -> None:
    """The collector is off inside any block, back on after the last one, and left off if
    it was off before the first (another owner decided that)."""
    import threading

    from aggregator.live import collection_paused

    assert gc.isenabled()
    inside = threading.Event()
    leave = threading.Event()

    def other_thread() -> None:
        with collection_paused():
            inside.set()
            leave.wait(60)  # a bound against hanging; the test sets it long before

    worker = threading.Thread(target=other_thread)
    with collection_paused():
        assert not gc.isenabled()
        worker.start()
        assert inside.wait(60)
    assert not gc.isenabled()  # the other thread's block still runs
    leave.set()
    worker.join(60)
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_no_collection_runs_while_an_apply_builds(tt) -> None:
    """RealtimeFeed.ingest holds the collector off while it builds the new state: with the
    threshold at 1 a collection would start at nearly every allocation in build_part, yet
    none starts there (collections still run around it), and the collector is on after."""
    from rtfeeds import message, stu, trip_update

    from connectors.gtfs_rt import RealtimeFeed

    updates = [trip_update("T1", stu(1, "A", dep_delay=k), entity_id=f"e{k}") for k in range(300)]
    body = message(*updates).SerializeToString()
    started: list[bool] = []  # per collection: whether build_part was running

    def watch(phase: str, info: dict) -> None:
        if phase == "start":
            frame = sys._getframe().f_back
            while frame is not None and frame.f_code.co_name != "build_part":
                frame = frame.f_back
            started.append(frame is not None)

    threshold = gc.get_threshold()
    gc.callbacks.append(watch)
    gc.set_threshold(1)
    try:
        accepted = RealtimeFeed(tt).ingest("s", body, 0).accepted
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(watch)
    assert accepted
    assert started and not any(started)
    assert gc.isenabled()


def test_without_a_resident_figure_a_sweep_comes_every_so_many_adoptions(monkeypatch) -> None:
    """Where /proc cannot be read, growth cannot be seen: sweep now and then instead."""
    monkeypatch.setattr(live, "resident_bytes", lambda: None)
    monkeypatch.setattr(live, "SWEEP_EVERY_BLIND", 8)
    calls = _record_sweeps(monkeypatch)
    data = LiveData()
    for version in range(1, 25):
        data.adopt(_snapshot(version, {"v": version}))
    assert [i for i, sweep in enumerate(calls, 1) if sweep] == [8, 16, 24]


def test_garbage_already_dead_at_a_freeze_is_collected_not_frozen() -> None:
    """A fetch leaves cycles (HTTP response objects) that are dead but not yet collected when
    the snapshot is adopted: the freeze collects them instead of keeping them until a sweep."""
    gc.disable()  # no automatic collection may take them first
    try:
        freeze_heap()
        node = _Node()
        del node  # unreachable, but a cycle: only a collection frees it
        freeze_heap()
        assert not _frozen_nodes()
    finally:
        gc.enable()


def test_the_sweep_rule_share_floor_interval_and_shrink(monkeypatch) -> None:
    """The rule itself, on resident figures set by the test: grown by a quarter *and* by
    SWEEP_MIN_GROWTH since the last sweep, not twice within SWEEP_MIN_INTERVAL_S, counted
    from a lower figure when the process shrank."""
    mb = 1024 * 1024
    resident = [1000 * mb]
    monkeypatch.setattr(live, "resident_bytes", lambda: resident[0])
    calls = _record_sweeps(monkeypatch)
    data = LiveData()
    versions = iter(range(1, 100))

    def adopt_at(size_mb: int) -> bool:
        resident[0] = size_mb * mb
        data.adopt(_snapshot(next(versions), {}))
        return calls[-1]

    assert adopt_at(1000) is False  # the baseline
    assert adopt_at(1240) is False  # +24 %
    assert adopt_at(1260) is True  # +26 %: swept, 1260 is the new baseline
    assert adopt_at(1700) is False  # +35 %, but the last sweep was just now
    monkeypatch.setattr(live, "SWEEP_MIN_INTERVAL_S", 0.0)
    assert adopt_at(1700) is True
    assert adopt_at(1000) is False  # shrank: growth now counts from 1000
    assert adopt_at(1260) is True
    # A small process: +50 % but under SWEEP_MIN_GROWTH (64 MB) is no reason.
    small = LiveData()
    for size_mb, swept in ((100, False), (150, False), (170, True)):
        resident[0] = size_mb * mb
        small.adopt(_snapshot(1 + len(calls), {}))
        assert calls[-1] is swept, size_mb

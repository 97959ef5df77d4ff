"""What an API process serves from: the latest snapshot of each source, and its indexes.

Indexes are built once per snapshot version (when the data changes), never per request,
and replaced whole so a request reads a consistent one without locks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aggregator.cancelling import cancel_and_wait
from aggregator.model import ChangeEvent, Snapshot

IndexT = TypeVar("IndexT")
CombinedBuild = Callable[[dict[str, Snapshot], Any], Any]

log = logging.getLogger(__name__)

#: Frozen garbage cycles are collected (a sweep, see :func:`freeze_heap`) once the process
#: holds this share more memory than after the last sweep, and at least SWEEP_MIN_GROWTH bytes
#: more. A snapshot replacing one of its size frees the old one by reference counting, so
#: resident memory stays flat; what makes it grow is garbage cycles kept by the freeze (what
#: a sweep is for) or more data (a new source: one sweep, then that is the new baseline).
#: Memory rather than an object count: counting frozen objects walks them all (~7 ms), and a
#: cycle holding big arrays is few objects but many bytes. So frozen garbage is bounded by
#: these thresholds, and a server whose data keeps its size never sweeps.
SWEEP_GROWTH = 0.25
SWEEP_MIN_GROWTH = 64 * 1024 * 1024
#: And not twice within this many seconds: growth also comes from the allocator keeping freed
#: memory (a big apply's peak), which no sweep gives back; a leak worth a sweep is slow.
SWEEP_MIN_INTERVAL_S = 900.0
#: Where resident memory cannot be read (no /proc), a sweep every this many adoptions instead.
SWEEP_EVERY_BLIND = 64
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux), or None where it cannot be read."""
    try:
        return int(_STATM.read_bytes().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.0f}"


def freeze_heap(sweep: bool = False) -> int:
    """Move every object alive now out of the cyclic collector's reach (``gc.freeze``).

    Why: a server's heap is a few hundred thousand container objects (modules, indexes,
    realtime states), and a full (generation 2) collection walks them all: 40-75 ms with the
    GIL held, a pause of the event loop whatever thread triggers it. Frozen objects are
    skipped by every later collection, so only what was allocated since takes part.

    What it costs: frozen objects are still freed by reference counting when a snapshot is
    replaced; only garbage *cycles* among them stay until they are unfrozen and collected.
    So the young generations are collected first: cycles already dead such as a finished
    fetch's HTTP objects would otherwise be frozen for good (~2 ms for a 5,000-trip realtime
    state). Only the young ones: a full collection would also walk what another thread is
    building meanwhile (a timetable being compiled), however big. Cycles that die after
    being frozen (a request in flight at that moment) remain: ``gc.unfreeze()`` alone would
    not reclaim them (they go back to generation 2 and the next freeze takes them again), so
    ``sweep`` unfreezes, collects everything (one full-collection pause) and freezes again;
    the caller does it now and then to bound that.

    Returns how many unreachable objects the collection found.
    """
    if sweep:
        gc.unfreeze()
    found = gc.collect() if sweep else gc.collect(1)
    gc.freeze()
    return found


class _CollectorPause:
    """Counts the blocks of :func:`collection_paused` running, in any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks = 0
        self.was_enabled = False


_pause = _CollectorPause()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Hold the cyclic collector off while a block builds data that will all stay alive.

    Why: applying a big realtime feed allocates tens of thousands of objects that live until
    the next poll (and are frozen once adopted, see :func:`freeze_heap`). The allocations
    trigger a full collection that walks them all with the GIL held — about 12 ms for 5,000
    trips, a pause of the event loop that finds no garbage. Reference counting frees as usual
    meanwhile; only garbage cycles wait for the end of the block. Blocks may nest and run in
    several threads: the collector comes back when the last one ends, if it was on before.
    """
    with _pause.lock:
        if _pause.blocks == 0:
            _pause.was_enabled = gc.isenabled()
            gc.disable()
        _pause.blocks += 1
    try:
        yield
    finally:
        with _pause.lock:
            _pause.blocks -= 1
            if _pause.blocks == 0 and _pause.was_enabled:
                gc.enable()


@dataclass
class _Combined:
    """An index over every source of some types (all event sources, deduplicated)."""

    types: frozenset[str]
    build: CombinedBuild
    key: tuple[tuple[str, int], ...] | None = None
    value: Any = None
    task: asyncio.Task[None] | None = None


class LiveData:
    """The in-process view of every source's current snapshot."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._indexes: dict[tuple[str, str], tuple[tuple[int, ...], Any]] = {}
        self._eager: dict[str, list[tuple[str, Callable[[Snapshot], Any]]]] = {}
        self._combined: dict[str, _Combined] = {}
        self._listeners: list[Callable[[Snapshot], None]] = []
        #: Bumped whenever what a request could read here changes (a snapshot adopted or
        #: dropped, a combined index swapped in): cached answers of an older one are void.
        self.generation = 0
        self._adoptions = 0
        #: How many sweeps adoptions have run (see :meth:`_freeze`).
        self.sweeps = 0
        #: Resident bytes after the last sweep (None: no adoption yet, or unknown).
        self._resident_after_sweep: int | None = None
        self._last_sweep = -float("inf")  # time.monotonic() of the last sweep

    def touch(self) -> None:
        """Void every answer cached from what is served now (e.g. a configuration reload)."""
        self.generation += 1

    def listen(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with each snapshot this process starts serving (live streams)."""
        self._listeners.append(listener)

    def build_eagerly(self, source_type: str, name: str, build: Callable[[Snapshot], Any]) -> None:
        """Build index ``name`` as soon as a snapshot of ``source_type`` arrives.

        Big indexes (a city's timetable) must not make the first request after a change wait.
        """
        self._eager.setdefault(source_type, []).append((name, build))

    def on_change(self, event: ChangeEvent) -> None:
        """Store listener: adopt the announced snapshot when it is newer than ours."""
        if event.snapshot is None:
            return
        current = self._snapshots.get(event.source_id)
        if current is None or event.snapshot.version > current.version:
            self._snapshots[event.source_id] = event.snapshot
            self.generation += 1
            for name, build in self._eager.get(event.snapshot.source_type, ()):
                self.index(event.source_id, name, build)
            for name, spec in self._combined.items():
                if event.snapshot.source_type in spec.types:
                    self._rebuild_soon(name, spec)
            for listener in self._listeners:
                listener(event.snapshot)
            # What the snapshot and its eager indexes hold is long-lived: out of the collector.
            self._freeze()

    def _freeze(self) -> None:
        """Freeze the heap after an adoption, sweeping first when frozen garbage may pile up."""
        self._adoptions += 1
        baseline = self._resident_after_sweep
        resident = resident_bytes()
        if resident is None:
            sweep = self._adoptions % SWEEP_EVERY_BLIND == 0
        else:
            # A sweep is one full collection on the loop (40-75 ms for a server's heap), so
            # only when it is likely to find something.
            sweep = (
                baseline is not None
                and resident > baseline + max(SWEEP_MIN_GROWTH, baseline * SWEEP_GROWTH)
                and time.monotonic() - self._last_sweep >= SWEEP_MIN_INTERVAL_S
            )
        started = time.perf_counter()
        found = freeze_heap(sweep=sweep)
        if sweep or baseline is None:
            self._resident_after_sweep = resident_bytes()
        elif resident is not None and resident < baseline:
            # Smaller than after the last sweep (a source dropped): growth counts from here.
            self._resident_after_sweep = resident
        if sweep:
            self.sweeps += 1
            self._last_sweep = time.monotonic()
            log.info(
                "heap sweep: %d unreachable objects collected in %.0f ms (resident %s → %s MB)",
                found,
                (time.perf_counter() - started) * 1000,
                _mb(resident),
                _mb(self._resident_after_sweep),
            )

    def drop(self, source_id: str) -> None:
        """Forget a source removed from the configuration (combined indexes rebuild)."""
        self._snapshots.pop(source_id, None)
        self.generation += 1
        for key in [k for k in self._indexes if k[0] == source_id]:
            del self._indexes[key]
        for name, spec in self._combined.items():
            if spec.value is not None:
                self._rebuild_soon(name, spec)

    def adopt(self, snapshot: Snapshot) -> None:
        """Take a snapshot loaded directly from the store (e.g. at start-up)."""
        self.on_change(ChangeEvent(snapshot.source_id, snapshot.version, snapshot))

    def snapshot(self, source_id: str) -> Snapshot | None:
        return self._snapshots.get(source_id)

    def snapshots(self) -> dict[str, Snapshot]:
        return dict(self._snapshots)

    def index(
        self, source_id: str, name: str, build: Callable[[Snapshot], IndexT]
    ) -> IndexT | None:
        """The index ``name`` of the current snapshot of ``source_id``, built on first use."""
        snapshot = self._snapshots.get(source_id)
        if snapshot is None:
            return None
        key = (source_id, name)
        cached = self._indexes.get(key)
        if cached is not None and cached[0] == snapshot.version:
            return cached[1]
        built = build(snapshot)
        self._indexes[key] = (snapshot.version, built)
        return built

    # -- indexes over several sources ---------------------------------------------------

    def combine(self, name: str, types: frozenset[str], build: CombinedBuild) -> None:
        """Keep index ``name`` over every source of ``types``.

        ``build(snapshots, previous)`` gets the current snapshots by source id and the index
        it replaces (for tombstones). It runs in a worker thread when a snapshot changes; until
        it is done, readers keep the previous index.
        """
        self._combined[name] = _Combined(types, build)

    def _key(self, spec: _Combined) -> tuple[tuple[str, int], ...]:
        return tuple(
            sorted(
                (source_id, snapshot.version)
                for source_id, snapshot in self._snapshots.items()
                if snapshot.source_type in spec.types
            )
        )

    def _of_types(self, spec: _Combined) -> dict[str, Snapshot]:
        return {i: s for i, s in self._snapshots.items() if s.source_type in spec.types}

    def combined(self, name: str) -> Any:
        """The latest index ``name``; built here only if none exists yet."""
        spec = self._combined[name]
        if spec.value is None or (spec.key != self._key(spec) and spec.task is None):
            key = self._key(spec)
            spec.value = spec.build(self._of_types(spec), spec.value)
            spec.key = key
            self.generation += 1
        return spec.value

    def _rebuild_soon(self, name: str, spec: _Combined) -> None:
        if spec.task is not None:
            return  # the running build loops until it has caught up
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next reader builds it
        spec.task = loop.create_task(self._rebuild(name, spec), name=f"index-{name}")

    async def _rebuild(self, name: str, spec: _Combined) -> None:
        try:
            while spec.key != (key := self._key(spec)):
                started_from = spec.key
                snapshots = self._of_types(spec)
                value = await asyncio.to_thread(spec.build, snapshots, spec.value)
                if spec.key == started_from:  # a reader did not build a newer one meanwhile
                    spec.value, spec.key = value, key
                    self.generation += 1
        except Exception:
            log.exception("building index %s failed; the previous one keeps serving", name)
        finally:
            spec.task = None

    async def settled(self) -> None:
        """Wait until every index build under way is done (tests, and orderly start-up)."""
        while tasks := [spec.task for spec in self._combined.values() if spec.task is not None]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel index builds under way."""
        await cancel_and_wait(*(spec.task for spec in self._combined.values()))

"""Applying a big GTFS-realtime TripUpdates feed: bytes → swapped-in state, and the pauses.

    .venv/bin/python bench/gtfs_rt_apply.py --size 1M --trips 5000 --updates 100000 --runs 9

Builds (or reuses) the synthetic city feed of bench/make_feed.py, then a TripUpdates
FeedMessage of --trips trips / --updates stop_time_updates on 2026-11-26 (see
bench/gtfs_rt_feedgen.py for its mix: delays, cancellations, skipped stops, time-only and
delay-only events...). Each run measures, on a fresh RealtimeFeed:

- the stages: ``decode_feed`` (protobuf parse + checks), ``decode_updates`` (every
  stop_time_update read from the bytes in bulk), ``build_part`` (resolve every trip and apply
  its updates) and the ``RealtimeState`` swap, then ``RealtimeFeed.ingest(bytes)`` end to end;
- the poller's path end to end, what the target is about: ``GtfsRtConnector.parse`` of the
  fetched payload (checks every body, then ingests it), the snapshot saved in the memory
  store and adopted by ``LiveData`` (which drops the previous state and freezes the heap).
  One poller lives through the whole run, as in a server: each poll replaces the previous
  poll's state, and the report says how many sweeps its growth rule ran, and when;
- the sweep: one full collection of the frozen heap (``freeze_heap(sweep=True)``), which an
  adoption adds when the process has grown (see ``aggregator.live``), timed --runs times
  after the runs; the server's modules are imported so that the heap it walks is a server's;
- the floor, side by side: ``FeedMessage.ParseFromString`` plus a Python loop reading one
  field of every stop_time_update (no engine can touch the updates for less in Python);
- the pause: that poller path runs as the poller runs it (parse in a worker thread with
  ``asyncio.to_thread``, adoption on the loop) while the event loop ticks every 5 ms and
  answers a departures board (busiest stop of the updated trips, next hour, limit 20) back to
  back; the longest gap between two ticks is the pause a request would see, and the slowest
  board is the worst latency during the swap.
  The process runs with the server's interpreter settings (``serving.tune_interpreter``: a
  1 ms GIL switch interval); ``--default-switch-interval`` keeps CPython's 5 ms to compare.

Prints a Markdown table (median and p90 over --runs, after one warm-up run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from benchlib import feed_path, header, percentile, size_label, table
from gtfs_rt_feedgen import make_trip_updates
from make_feed import parse_count

import aggregator.api.app  # noqa: F401 - a server's modules, so a sweep walks a server's heap
from aggregator.clock import Clock
from aggregator.connector import ConnectorContext
from aggregator.live import LiveData, freeze_heap
from aggregator.model import Snapshot
from aggregator.redact import Redactor
from aggregator.serving import tune_interpreter
from aggregator.store.memory import MemoryStore
from connectors.gtfs import Timetable, compile_feed
from connectors.gtfs_rt import RealtimeFeed, RealtimeState, decode_feed, realtime_departures
from connectors.gtfs_rt.connector import GtfsRtConfig, GtfsRtConnector, RealtimeData, frame
from connectors.gtfs_rt.decode import read_header
from connectors.gtfs_rt.part import build_part
from connectors.gtfs_rt.wire import decode_updates

DAY = dt.date(2026, 11, 26)
TICK_S = 0.005
SOURCE = "bench"


def ms(seconds: float) -> float:
    return seconds * 1000


def busiest_stop(tt: Timetable, data: bytes) -> str:
    """The stop called at most by the updated trips (its board changes the most)."""
    msg = decode_feed(data)
    runs = [tt.runs_of_trip(tt.trip_index[e.trip_update.trip.trip_id])[0] for e in msg.entity]
    rows = np.concatenate([np.arange(tt.st_ptr[r], tt.st_ptr[r + 1]) for r in runs])
    return tt.stop_ids[int(np.bincount(tt.st_stop[rows]).argmax())]


def floor(data: bytes) -> float:
    """ParseFromString + one field read per stop_time_update: the least any engine does."""
    from google.transit import gtfs_realtime_pb2 as pb

    started = time.perf_counter()
    msg = pb.FeedMessage()
    msg.ParseFromString(data)
    total = 0
    for entity in msg.entity:
        for update in entity.trip_update.stop_time_update:
            total += update.stop_sequence
    return time.perf_counter() - started


def stages(tt: Timetable, data: bytes, now: float, poller: PollerPath) -> dict[str, float]:
    """decode / bulk decode / resolve+apply / swap, as RealtimeFeed.ingest chains them; then
    one poll of the long-lived ``poller`` (replacing the state of its previous poll)."""
    t0 = time.perf_counter()
    msg = decode_feed(data)
    t1 = time.perf_counter()
    wire = decode_updates(data, len(msg.entity))
    t2 = time.perf_counter()
    refs = [(wire, i) for i in range(len(msg.entity))] if wire is not None else None
    part = build_part(tt, SOURCE, read_header(msg), now, msg.entity, "", refs)
    t3 = time.perf_counter()
    RealtimeState([part])
    t4 = time.perf_counter()
    started = time.perf_counter()
    RealtimeFeed(tt).ingest(SOURCE, data, now)
    t6 = time.perf_counter()
    asyncio.run(poller.poll())
    return {
        "decode": t1 - t0,
        "wire": t2 - t1,
        "apply": t3 - t2,
        "swap": t4 - t3,
        "ingest": t6 - started,
        "poll": time.perf_counter() - t6,
    }


class PollerPath:
    """What the poller does with a fetched body of a gtfs_rt source, minus the network.

    ``GtfsRtConnector.parse`` (in a worker thread when ``threaded``), a Snapshot saved in
    the MemoryStore, adopted by LiveData (the previous state is dropped there, on the loop).
    """

    def __init__(self, tt: Timetable, data: bytes, now: float) -> None:
        timetable = Snapshot("city", "gtfs", 1, "", dt.datetime.now(dt.UTC), tt, 0)
        context = ConnectorContext(
            timezone=tt.zones[0],
            languages=("en",),
            base_dir=None,
            allow_file_urls=False,
            redactor=Redactor(),
            clock=Clock(fixed=dt.datetime.fromtimestamp(now, dt.UTC)),
            snapshot_of=lambda source_id: timetable if source_id == "city" else None,
        )
        config = GtfsRtConfig(
            id=SOURCE, type="gtfs_rt", feed="city", urls=["https://rt.example/tu"]
        )
        self.connector = GtfsRtConnector(config, context)
        self.payload = frame(0, data)  # as GtfsRtConnector.fetch frames it
        self.store = MemoryStore()
        self.live = LiveData()
        self.store.subscribe(self.live.on_change)
        self.version = 0

    async def poll(self, threaded: bool = False) -> None:
        if threaded:
            parsed = await asyncio.to_thread(self.connector.parse, self.payload)
        else:
            parsed = self.connector.parse(self.payload)
        self.version += 1
        snapshot = Snapshot(
            SOURCE, "gtfs_rt", self.version, "", dt.datetime.now(dt.UTC), parsed.data, 0
        )
        await self.store.save_snapshot(snapshot, payload=self.payload)

    def state(self) -> RealtimeState:
        snapshot = self.live.snapshot(SOURCE)
        assert snapshot is not None
        data: RealtimeData = snapshot.data
        return data.state


def board_query(tt: Timetable, stop_id: str, at: dt.datetime) -> Callable[[RealtimeState], int]:
    def query(state: RealtimeState) -> int:
        return len(realtime_departures(tt, state, stop_id, at, at, limit=20).departures)

    return query


async def during_swap(
    poller: PollerPath, query: Callable[[RealtimeState], int]
) -> dict[str, float]:
    """Max event-loop gap and max board latency while a poll applies the feed (boards read
    the state of the previous poll meanwhile, as between two polls of a server)."""
    done = threading.Event()
    gaps: list[float] = []
    boards: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            t = time.perf_counter()
            gaps.append(t - last)
            last = t

    async def answer_boards() -> None:
        while not done.is_set():
            started = time.perf_counter()
            query(poller.state())
            boards.append(time.perf_counter() - started)
            await asyncio.sleep(0)

    async def apply() -> float:
        started = time.perf_counter()
        try:
            await poller.poll(threaded=True)
        finally:
            done.set()
        return time.perf_counter() - started

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(answer_boards())]
    await asyncio.sleep(0.05)  # both running before the swap starts
    gaps.clear()
    boards.clear()
    took = await apply()
    await asyncio.gather(*tasks)
    return {
        "threaded": took,
        "pause": max(gaps),
        "board_max": max(boards),
        "board_med": statistics.median(boards),
        "boards": len(boards),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=parse_count, default=1_000_000, help="static stop_times")
    parser.add_argument("--trips", type=int, default=5000, help="trip updates in the message")
    parser.add_argument("--updates", type=parse_count, default=100_000, help="stop_time_updates")
    parser.add_argument("--runs", type=int, default=9, help="measured runs (after a warm-up)")
    parser.add_argument("--seed", type=int, default=2026, help="feed generator seed")
    parser.add_argument(
        "--default-switch-interval",
        action="store_true",
        help="keep CPython's 5 ms switch interval (the server sets its own, see serving.py)",
    )
    args = parser.parse_args()
    if not args.default_switch_interval:
        tune_interpreter()  # as `beffroi serve` does before it answers anything

    path = feed_path(args.size, args.seed)
    tt = compile_feed(path)
    freeze_heap()  # as aggregator.live does once the timetable's snapshot is adopted
    data, shape = make_trip_updates(
        tt, DAY, trips=args.trips, stop_time_updates=args.updates, seed=args.seed
    )
    now = float(decode_feed(data).header.timestamp)
    stop_id = busiest_stop(tt, data)
    at = dt.datetime.fromtimestamp(now, tt.zones[0])
    query = board_query(tt, stop_id, at)
    idle_state = RealtimeFeed(tt)
    idle_state.ingest(SOURCE, data, now)
    found = query(idle_state.state)
    # One long-lived poller, as in a server: each poll replaces the previous poll's state, and
    # its LiveData sweeps only when the process has grown since its last sweep.
    poller = PollerPath(tt, data, now)
    asyncio.run(poller.poll())

    samples: dict[str, list[float]] = {}
    sweeps_measured = 0
    for run in range(args.runs + 1):
        gc.collect()
        sweeps_before = poller.live.sweeps
        row = {"floor": floor(data)}
        row.update(stages(tt, data, now, poller))
        row.update(asyncio.run(during_swap(poller, query)))
        if run == 0:
            continue  # warm-up: caches (service-day origins, parse_start_date) fill here
        sweeps_measured += poller.live.sweeps - sweeps_before
        for key, value in row.items():
            samples.setdefault(key, []).append(value)
        print(f"run {run}: poll {ms(row['poll']):.0f} ms", file=sys.stderr)

    # What a sweep costs, timed after the runs (forcing one in each run would also clear the
    # frozen garbage the growth rule is judged on).
    for _ in range(args.runs):
        started = time.perf_counter()
        freeze_heap(sweep=True)
        samples.setdefault("sweep", []).append(time.perf_counter() - started)

    def cell(key: str, pct: float) -> str:
        values = samples[key]
        value = statistics.median(values) if pct == 50 else percentile(values, pct)
        return f"{ms(value):.1f}"

    rows = [
        ["floor: `ParseFromString` + loop over every stop_time_update", "floor"],
        ["decode (`decode_feed`)", "decode"],
        ["stop_time_updates in bulk (`decode_updates`)", "wire"],
        ["resolve + apply (`build_part`)", "apply"],
        ["swap (`RealtimeState`)", "swap"],
        ["bytes → state (`RealtimeFeed.ingest`)", "ingest"],
        ["**poll: payload → adopted state (`GtfsRtConnector.parse`, store, `LiveData`)**", "poll"],
        ["the same poll with the parse in a worker thread, loop and boards running", "threaded"],
        ["max event-loop pause during that apply (5 ms ticker)", "pause"],
        ["an adoption's sweep, when the process grew (`freeze_heap(sweep=True)`)", "sweep"],
        ["max board latency during that apply", "board_max"],
        ["median board latency during that apply", "board_med"],
    ]
    print(header())
    print(
        f"Static feed: synthetic {size_label(args.size)} ({tt.counts['stop_times']:,} stop "
        f"times). TripUpdates: {shape.trips:,} trips, {shape.stop_time_updates:,} "
        f"stop_time_updates ({shape.cancelled} trips cancelled, {shape.skipped} skipped stops, "
        f"{shape.no_data} NO_DATA), {shape.size_bytes / 1e6:.1f} MB; {args.runs} runs. "
        f"Board: `{stop_id}`, next hour, limit 20 ({found} departures), "
        f"{statistics.median(samples['boards']):.0f} answered during each apply. Heap frozen "
        f"at each adoption (`LiveData`); {poller.live.sweeps} sweep(s) by its growth rule, "
        f"{sweeps_measured} in the measured runs; "
        f"switch interval {sys.getswitchinterval() * 1000:g} ms.\n"
    )
    print(
        table(
            ["step", "median ms", "p90 ms"],
            [[label, cell(key, 50), cell(key, 90)] for label, key in rows],
            [False, True, True],
        )
    )
    total = statistics.median(samples["poll"])
    pause = max(samples["pause"])
    print(
        f"\nTarget: bytes → state < 300 ms: {'met' if total < 0.3 else '**not met**'} "
        f"({ms(total):.0f} ms median, {ms(percentile(samples['poll'], 90)):.0f} ms p90; "
        f"floor {ms(statistics.median(samples['floor'])):.0f} ms). "
        f"No global pause > 50 ms: {'met' if pause < 0.05 else '**not met**'} "
        f"(worst tick gap {ms(pause):.1f} ms over all runs, worst board "
        f"{ms(max(samples['board_max'])):.1f} ms)."
    )


if __name__ == "__main__":
    main()

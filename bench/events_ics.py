"""Parse and expand a big calendar over one year: icalevents, icalendar + recurring-ical-events
called directly, and Beffroi's whole ``ics`` path (issue 5).

Every measure runs in a fresh subprocess (imports done before the clock starts), the peers
round-robin so they share the machine's moments alike, and the tables give medians:

* icalevents ``events(file=..., start, end)``; a run longer than ``--timeout`` is stopped;
* the direct pair: ``icalendar.Calendar.from_ical`` + ``recurring_ical_events.of(cal)
  .between(start, end)``, touching each occurrence's start, end and summary;
* Beffroi: a Runtime with one ``ics`` source on a ``file:`` URL, ``poll_once`` (read,
  parse, expand, normalise, store) and the build of the event index;
* Beffroi again on the unchanged file: the second ``poll_once`` (must say ``unchanged`` and
  not parse), and a third after ``touch`` (new mtime, same bytes: read and hash, no parse).

    .venv/bin/python bench/events_ics.py --events 5000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from events_common import ROOT, header, median, table
from events_make_ics import WINDOW_END, WINDOW_START, ensure_calendar

KINDS = ("icalevents", "direct", "beffroi")
CONFIG = """
defaults:
  allow_file_urls: true
  timezone: Europe/Paris
  languages: [fr, en]
clock:
  fixed: {now}
connectors:
  - id: agenda
    type: ics
    url: file:{name}
    window_past: 1s
    window_future: {future}s
"""


def _window() -> tuple[datetime, datetime]:
    return datetime.fromisoformat(WINDOW_START), datetime.fromisoformat(WINDOW_END)


# --- one measure, in a worker process ------------------------------------------------------


def run_icalevents(path: Path) -> dict[str, Any]:
    from icalevents.icalevents import events

    start, end = _window()
    started = time.perf_counter()
    found = events(file=str(path), start=start, end=end)
    took = time.perf_counter() - started
    return {"seconds": took, "occurrences": len(found)}


def run_direct(path: Path) -> dict[str, Any]:
    import icalendar
    import recurring_ical_events

    start, end = _window()
    started = time.perf_counter()
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    touched: list[tuple[Any, Any, str]] = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        end_prop = event.get("DTEND")
        touched.append(
            (event["DTSTART"].dt, end_prop.dt if end_prop else None, str(event.get("SUMMARY")))
        )
    took = time.perf_counter() - started
    return {"seconds": took, "occurrences": len(touched)}


def _runtime(path: Path) -> Any:
    from aggregator.config import parse_config
    from aggregator.registry import config_models, discover_connector_types
    from aggregator.runtime import Runtime

    start, end = _window()
    # window_past must be > 0: "now" is one second into the window, which still starts at
    # WINDOW_START and ends at WINDOW_END, as for the peers.
    now = start + timedelta(seconds=1)
    future = int((end - now).total_seconds())
    text = CONFIG.format(now=now.isoformat(), name=path.name, future=future)
    types = discover_connector_types()
    config = parse_config(
        text,
        filename="bench.yaml",
        connector_types=config_models(types),
        environ={},
        base_dir=path.parent,
    )
    return Runtime(config, types)


async def _beffroi(path: Path) -> dict[str, Any]:
    runtime = _runtime(path)
    await runtime.start(poll=False)
    connector = runtime.connectors["agenda"]
    parse_calls: list[float] = []
    original_parse = connector.parse

    def counting_parse(payload: bytes) -> Any:
        started = time.perf_counter()
        try:
            return original_parse(payload)
        finally:
            parse_calls.append(time.perf_counter() - started)

    connector.parse = counting_parse  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        first = await runtime.poll_once("agenda")
        polled = time.perf_counter()
        await runtime.live.settled()
        index = runtime.live.combined("events")
        built = time.perf_counter()
        snapshot = runtime.live.snapshot("agenda")
        parses_after_first = len(parse_calls)

        again = time.perf_counter()
        second = await runtime.poll_once("agenda")
        second_s = time.perf_counter() - again

        os.utime(path)  # a new mtime, the same bytes: read and hashed, still no parse
        again = time.perf_counter()
        third = await runtime.poll_once("agenda")
        third_s = time.perf_counter() - again
    finally:
        await runtime.stop()
    return {
        "seconds": built - started,
        "poll_s": polled - started,
        "parse_s": parse_calls[0] if parse_calls else None,
        "index_s": built - polled,
        "occurrences": snapshot.record_count if snapshot else 0,
        "indexed": len(index) if index is not None else 0,
        "issues": list(snapshot.issues) if snapshot else [],
        "stats": dict(snapshot.stats) if snapshot else {},
        "first": first.outcome,
        "second": second.outcome,
        "second_s": second_s,
        "third": third.outcome,
        "third_s": third_s,
        "parses_after_first": parses_after_first,
        "parses_total": len(parse_calls),
    }


def run_beffroi(path: Path) -> dict[str, Any]:
    return asyncio.run(_beffroi(path))


def profile_beffroi(path: Path, top: int) -> str:
    """cProfile of the pure step (expand_calendar) on this calendar: where the time goes."""
    from zoneinfo import ZoneInfo

    from connectors.events.ics import expand_calendar

    start, end = _window()
    payload = path.read_bytes()
    profiler = cProfile.Profile()
    profiler.enable()
    result = expand_calendar(
        payload,
        source="agenda",
        channel="events",
        zone=ZoneInfo("Europe/Paris"),
        language="fr",
        window_start=start,
        window_end=end,
    )
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return f"{result.record_count} occurrences\n{out.getvalue()}"


WORKERS = {"icalevents": run_icalevents, "direct": run_direct, "beffroi": run_beffroi}


# --- the driver ----------------------------------------------------------------------------


def measure(kind: str, path: Path, timeout: float) -> dict[str, Any] | None:
    """One run of ``kind`` in a fresh interpreter; None when it ran out of time."""
    command = [sys.executable, __file__, "--worker", kind, "--file", str(path)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.3f}" if seconds < 1 else f"{seconds:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=500, help="VEVENTs (default 500)")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--runs", type=int, default=3, help="runs of each peer (default 3)")
    parser.add_argument(
        "--icalevents-runs", type=int, default=1, help="runs of icalevents (default 1; 0: skip)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="stop a run after this (s, default 300)"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile Beffroi's parse")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.file)))
        return

    path = ensure_calendar(args.events, args.seed)
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    timed_out = False
    for run in range(args.runs):
        for kind in KINDS:
            if kind == "icalevents" and (run >= args.icalevents_runs or timed_out):
                continue
            print(f"run {run + 1}/{args.runs}: {kind}...", file=sys.stderr, flush=True)
            result = measure(kind, path, args.timeout)
            if result is None:
                timed_out = True
                print(f"  > {args.timeout:.0f} s, stopped", file=sys.stderr)
                continue
            print(f"  {result['seconds']:.2f} s", file=sys.stderr, flush=True)
            results[kind].append(result)

    print(header())
    size = path.stat().st_size
    print(
        f"Calendar: {args.events:,} VEVENTs (seed {args.seed}), {size / 1e6:.1f} MB; "
        f"window {WINDOW_START} to {WINDOW_END}; runs: {args.runs} "
        f"(icalevents {min(args.icalevents_runs, args.runs)}), medians.\n"
    )
    direct = median([r["seconds"] for r in results["direct"]])
    rows = []
    labels = {
        "icalevents": "icalevents `events(file=, start, end)`",
        "direct": "icalendar + recurring-ical-events, direct",
        "beffroi": "Beffroi: poll_once (file, parse, expand, normalise, store) + index",
    }
    for kind in KINDS:
        runs = results[kind]
        if kind == "icalevents" and args.icalevents_runs == 0:
            continue
        if not runs:
            rows.append([labels[kind], f"> {args.timeout:.0f} s", "n/a", "n/a", "0"])
            continue
        seconds = median([r["seconds"] for r in runs])
        counts = sorted({r["occurrences"] for r in runs})
        rows.append(
            [
                labels[kind],
                fmt_s(seconds),
                f"{min(r['seconds'] for r in runs):.2f}-{max(r['seconds'] for r in runs):.2f}",
                f"{seconds / direct:.2f}x",
                "/".join(f"{c:,}" for c in counts) + ("" if len(runs) > 1 else " (1 run)"),
            ]
        )
    print(table(["path", "median s", "range s", "vs direct pair", "occurrences"], rows))

    beffroi = results["beffroi"]
    if beffroi:
        print()
        print(
            table(
                ["Beffroi step", "median s", "note"],
                [
                    [
                        "poll_once, first (changed)",
                        fmt_s(median([r["poll_s"] for r in beffroi])),
                        "",
                    ],
                    [
                        "  of which parse (expand_calendar)",
                        fmt_s(median([r["parse_s"] for r in beffroi])),
                        "in a worker thread",
                    ],
                    [
                        "event index build",
                        fmt_s(median([r["index_s"] for r in beffroi])),
                        f"{beffroi[0]['indexed']:,} occurrences indexed",
                    ],
                    [
                        "poll_once, unchanged file",
                        f"{median([r['second_s'] for r in beffroi]) * 1000:.2f} ms",
                        f"outcome {beffroi[0]['second']!r}, parses "
                        f"{beffroi[0]['parses_after_first']} → "
                        f"{beffroi[0]['parses_total'] - (beffroi[0]['third'] != 'unchanged')}",
                    ],
                    [
                        "poll_once after touch (same bytes)",
                        f"{median([r['third_s'] for r in beffroi]) * 1000:.2f} ms",
                        f"outcome {beffroi[0]['third']!r}, parses in all: "
                        f"{beffroi[0]['parses_total']}",
                    ],
                ],
            )
        )
        stats = beffroi[0]["stats"]
        print(
            f"\nBeffroi stats: events {stats.get('events')}, series {stats.get('series')}, "
            f"occurrences {stats.get('occurrences')}, issues {len(beffroi[0]['issues'])}"
            + (f" (first: {beffroi[0]['issues'][0]})" if beffroi[0]["issues"] else "")
        )
        ratio = median([r["seconds"] for r in beffroi]) / direct
        print(
            f"\nTarget (whole ics path within 1.5x of the direct pair): "
            f"{'met' if ratio <= 1.5 else 'missed'}, {ratio:.2f}x."
        )
        unchanged_ok = all(
            r["second"] == "unchanged" and r["parses_total"] == r["parses_after_first"] == 1
            for r in beffroi
        )
        print(
            "Target (re-polling an unchanged calendar costs no parse): "
            f"{'met' if unchanged_ok else 'missed'}."
        )
    if args.profile:
        print("\n```text")
        print(profile_beffroi(path, 30))
        print("```")


if __name__ == "__main__":
    main()

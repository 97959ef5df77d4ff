"""Loading a GTFS feed: Beffroi's compile_feed and Timetable.load vs gtfs-kit's read_feed.

    .venv/bin/python bench/gtfs_load.py --sizes 1M,5M,10M --runs 3

For each size, a synthetic city feed (bench/make_feed.py, cached under the temp folder) is
loaded by each contender in a fresh subprocess, so that its peak resident memory (VmHWM) is
its own: Beffroi's ``compile_feed(path)``, Beffroi's ``Timetable.load`` of the ``.npz`` saved
from it (the restart path, with a cache_dir), and gtfs-kit's ``read_feed(path, dist_units="km")``.
Runs are interleaved (compile, read_feed, load, compile...) so background load hits all alike.
Prints a Markdown table of medians and ratios, with the targets.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    MB,
    ROOT,
    feed_path,
    header,
    median,
    memory_kb,
    parse_sizes,
    size_label,
    table,
)

COMPILE, LOAD, GTFS_KIT = "beffroi-compile", "beffroi-load", "gtfs-kit"
LABELS = {
    COMPILE: "Beffroi `compile_feed`",
    LOAD: "Beffroi `Timetable.load` (.npz)",
    GTFS_KIT: "gtfs-kit `read_feed`",
}
RESIDENT_TARGET_MB = 1024


def child(kind: str, feed: Path, npz: Path | None) -> None:
    """Load once and print one JSON line of measurements (runs in its own process)."""
    if kind == GTFS_KIT:
        import gtfs_kit
    else:
        from connectors.gtfs import Timetable, compile_feed
    gc.collect()
    base_kb = memory_kb("VmRSS")
    started = time.perf_counter()
    if kind == GTFS_KIT:
        loaded = gtfs_kit.read_feed(feed, dist_units="km")
        counts = {"stop_times": len(loaded.stop_times)}
    elif kind == COMPILE:
        loaded = compile_feed(feed)
        counts = loaded.counts
    else:
        loaded = Timetable.load(npz)
        counts = loaded.counts
    wall = time.perf_counter() - started
    gc.collect()
    result = {
        "wall_s": wall,
        "base_kb": base_kb,
        "peak_kb": memory_kb("VmHWM"),
        "after_kb": memory_kb("VmRSS"),
        "counts": counts,
    }
    if kind == COMPILE and npz is not None:
        loaded.save(npz)  # after the readings: the restart runs load this file
    print(json.dumps(result))


def measure(kind: str, feed: Path, npz: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", kind, str(feed)]
    if npz is not None:
        command += ["--npz", str(npz)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{kind} failed on {feed}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_size(size: int, runs: int, seed: int, feed: Path | None) -> dict[str, list[dict]]:
    feed = feed or feed_path(size, seed)
    npz = Path(tempfile.gettempdir()) / f"{feed.stem}.beffroi.npz"
    results: dict[str, list[dict]] = {COMPILE: [], GTFS_KIT: [], LOAD: []}
    for run in range(runs):
        # The first compile (re)writes the .npz, so the restart path loads a current file.
        results[COMPILE].append(measure(COMPILE, feed, npz if run == 0 else None))
        results[GTFS_KIT].append(measure(GTFS_KIT, feed, None))
        results[LOAD].append(measure(LOAD, feed, npz))
        print(
            f"{feed.name} run {run + 1}/{runs}: "
            + ", ".join(f"{k} {results[k][-1]['wall_s']:.2f}s" for k in results),
            file=sys.stderr,
        )
    results["feed"] = [{"path": str(feed), "zip_bytes": feed.stat().st_size}]
    npz_bytes = npz.stat().st_size
    npz.unlink()
    results["npz"] = [{"bytes": npz_bytes}]
    return results


def summarise(kind: str, runs: list[dict]) -> dict[str, float]:
    return {
        "wall_s": median([r["wall_s"] for r in runs]),
        "peak_mb": median([r["peak_kb"] for r in runs]) / 1024,
        "load_peak_mb": median([r["peak_kb"] - r["base_kb"] for r in runs]) / 1024,
        "after_mb": median([r["after_kb"] for r in runs]) / 1024,
        "base_mb": median([r["base_kb"] for r in runs]) / 1024,
    }


def paired(results: dict[str, list[dict]], kind: str, key: str) -> float:
    """Median over runs of ``kind`` / gtfs-kit, each run against the gtfs-kit run next to it."""
    return median([a[key] / b[key] for a, b in zip(results[kind], results[GTFS_KIT], strict=True)])


def report(all_results: dict[int, dict[str, list[dict]]]) -> str:
    rows = []
    verdicts = []
    for size, results in all_results.items():
        s = {kind: summarise(kind, results[kind]) for kind in (COMPILE, LOAD, GTFS_KIT)}
        zip_mb = results["feed"][0]["zip_bytes"] / MB
        compiled = results[COMPILE][0]["counts"]
        for kind in (COMPILE, LOAD, GTFS_KIT):
            m = s[kind]
            rows.append(
                [
                    f"{size_label(size)} ({zip_mb:.0f} MB zip)",
                    LABELS[kind],
                    f"{m['wall_s']:.2f}",
                    f"{paired(results, kind, 'wall_s'):.2f}x",
                    f"{m['peak_mb']:,.0f}",
                    f"{m['load_peak_mb']:,.0f}",
                    f"{paired(results, kind, 'peak_kb'):.2f}x",
                    f"{m['after_mb']:,.0f}",
                ]
            )
        time_ratio = paired(results, COMPILE, "wall_s")
        peak_ratio = paired(results, COMPILE, "peak_kb")
        resident = max(s[COMPILE]["after_mb"], s[LOAD]["after_mb"])
        verdicts.append(
            f"- {size_label(size)} ({compiled['stop_times']:,} compiled stop times, "
            f"{compiled['trips']:,} trips, {compiled['stops']:,} stops; .npz "
            f"{results['npz'][0]['bytes'] / MB:,.0f} MB): "
            f"load-and-compile ≤ 2x read_feed: {_met(time_ratio <= 2)} ({time_ratio:.2f}x); "
            f"peak RSS below gtfs-kit's: {_met(peak_ratio < 1)} ({peak_ratio:.2f}x); "
            f"resident after load < 1 GB: {_met(resident < RESIDENT_TARGET_MB)} "
            f"({resident:,.0f} MB); restart from .npz "
            f"{s[COMPILE]['wall_s'] / s[LOAD]['wall_s']:.0f}x faster than compiling"
        )
    headers = [
        "feed (stop_times)",
        "loader",
        "wall s",
        "time vs gtfs-kit",
        "peak RSS MB",
        "peak above imports MB",
        "peak vs gtfs-kit",
        "RSS after load MB",
    ]
    right = [False, False, True, True, True, True, True, True]
    return "\n".join(
        [
            header(),
            f"Medians of {_runs(all_results)} runs, each in a fresh process; ratios are medians "
            "of each run's ratio to the gtfs-kit run next to it (RSS includes the "
            "interpreter and imports; 'peak above imports' subtracts the RSS measured just "
            "before loading).",
            "",
            table(headers, rows, right),
            "",
            "Targets:",
            "",
            *verdicts,
        ]
    )


def _runs(all_results: dict[int, dict[str, list[dict]]]) -> str:
    counts = {size: len(results[COMPILE]) for size, results in all_results.items()}
    if len(set(counts.values())) == 1:
        return str(next(iter(counts.values())))
    return ", ".join(f"{n} for {size_label(size)}" for size, n in counts.items())


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,5M,10M", help="stop_times per feed (1M,5M,10M)")
    parser.add_argument("--runs", type=int, default=3, help="runs per loader and size (median)")
    parser.add_argument(
        "--runs-large", type=int, default=0, help="runs for feeds over 5M rows (default --runs)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="feed generator seed")
    parser.add_argument("--feed", type=Path, help="a real GTFS zip instead of synthetic ones")
    parser.add_argument("--quick", action="store_true", help="1M only, one run (a smoke test)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--npz", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, Path(rest[0]), args.npz)
        return
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.quick:
        args.sizes, args.runs = "1M", 1
    results: dict[int, dict[str, list[dict]]] = {}
    if args.feed:
        results[0] = bench_size(0, args.runs, args.seed, args.feed)
        size = results[0][GTFS_KIT][0]["counts"]["stop_times"]
        results = {size: results[0]}
    else:
        for size in parse_sizes(args.sizes):
            runs = args.runs_large if size > 5_000_000 and args.runs_large else args.runs
            results[size] = bench_size(size, runs, args.seed, None)
    print(report(results))


if __name__ == "__main__":
    main()

"""Helpers shared by the GTFS benchmarks: feeds, memory readings, wrk, Markdown tables."""

from __future__ import annotations

import contextlib
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from api_overhead import pinned
from make_feed import ensure_feed, parse_count

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def command_line() -> str:
    """The command that is running, as it would be typed from the repository root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def code_root() -> Path:
    """Where the Beffroi code being measured lives.

    The repository by default; run with ``PYTHONPATH=DIR`` to measure a clean export instead
    (``git archive HEAD | tar -x -C DIR; git rev-parse --short HEAD > DIR/COMMIT``), e.g. while
    the working tree is being edited.
    """
    import connectors

    return Path(connectors.__file__).resolve().parents[1]


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it."""
    root = code_root()
    if root != ROOT:
        marker = root / "COMMIT"
        commit = marker.read_text().strip() if marker.exists() else "unknown commit"
        return f"{commit} (clean export)"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "aggregator", "connectors"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:  # e.g. run from a `git archive` export: write its commit in COMMIT
        marker = ROOT / "COMMIT"
        return marker.read_text().strip() if marker.exists() else "unknown commit (no git)"
    return f"{head} + uncommitted changes" if dirty else head


def header() -> str:
    """The first lines of every report: the command, the code and the date."""
    return f"`{command_line()}`\n\nCode: {code_version()}; run {time.strftime('%Y-%m-%d %H:%M')}.\n"


def size_label(n: int) -> str:
    """``10M``, ``435k``: how a feed size is written in tables."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1e6:g}M"
    if n >= 1000:
        return f"{n / 1e3:.0f}k"
    return str(n)


def parse_sizes(text: str) -> list[int]:
    """``1M,5M,10M`` into row counts."""
    return [parse_count(part) for part in text.split(",") if part.strip()]


def feed_path(size: int, seed: int) -> Path:
    """The synthetic feed of ``size`` stop_times (generated under the temp folder if missing)."""
    started = time.perf_counter()
    path = ensure_feed(size, seed)
    took = time.perf_counter() - started
    if took > 1:
        print(f"generated {path} in {took:.1f}s", file=sys.stderr)
    return path


def memory_kb(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in KiB."""
    try:
        with Path("/proc/self/status").open() as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource  # no /proc: the peak is all getrusage knows

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 2,000 values is the 1,980th)."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A Markdown table; ``right[i]`` right-aligns column ``i``."""
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("| " + " | ".join("---:" if r else "---" for r in right) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def wait_ready(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 (a big feed compiles before the server is ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} was not ready within {timeout_s:.0f}s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, duration: int, script: Path | None = None) -> dict[str, float]:
    """One ``wrk -t1 -c32`` run on core 1: requests/s, p50 and p99 in ms, errors."""
    command = ["wrk", "-t1", "-c32", f"-d{duration}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        pinned(1, [*command, url]), capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    latencies = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", output).groups()
        latencies[pct] = float(value) * _UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", output)
    failed = int(bad.group(1)) if bad else 0
    if errors:
        failed += sum(int(g) for g in errors.groups())
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": latencies["50"],
        "p99_ms": latencies["99"],
        "errors": failed,
    }

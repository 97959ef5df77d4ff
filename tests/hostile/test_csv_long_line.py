"""A CSV export with one endless line: refused by its line cap, the last good records kept.

Without the cap the csv module builds one row of every field of the line: an 8 MB line of
``x;`` is a row of four million fields, a few hundred MB of Python objects.
"""

from __future__ import annotations

import pytest
from faults.sources import (
    FAULTY,
    KINDS,
    build_runtime,
    check_healthy_unaffected,
    load_good,
    peak_memory,
    poll_fault,
    state,
)
from upstream_server import Reply, Upstream

from connectors.records import CsvRecordsConfig

CSV = KINDS["csv_records"]
MB = 1024 * 1024
LINE_BYTES = 8 * MB
#: The body is held (fetched, then scanned a slice at a time): about twice its size, no more.
MEMORY_BOUND = 3 * LINE_BYTES


def _long_line_body() -> bytes:
    good = CSV.good()
    header, _, rows = good.partition(b"\n")
    return header + b"\n" + b"x;" * (LINE_BYTES // 2) + b"\n" + rows


async def test_endless_csv_line_fails_the_poll_and_keeps_the_records(upstream: Upstream) -> None:
    """The poll fails naming the line, the cap and the option; records stay served."""
    runtime = build_runtime(CSV, upstream, max_bytes=4 * LINE_BYTES)
    await load_good(runtime, CSV, upstream)
    served = runtime.live.snapshot(FAULTY)
    upstream.route(CSV.path, Reply(body=_long_line_body(), content_type=CSV.content_type))
    with peak_memory() as peak:
        outcomes = await poll_fault(runtime, 1)
    message = runtime.statuses[FAULTY].last_error or ""
    assert [o.outcome for o in outcomes] == ["failed"]
    assert "line 2 of the CSV is longer than 1048576 bytes (max_line_bytes)" in message
    assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / MB:.0f} MB"
    assert runtime.live.snapshot(FAULTY) is served
    assert state(runtime) == "degraded"
    await check_healthy_unaffected(runtime)


async def test_a_raised_cap_lets_the_same_line_through(upstream: Upstream) -> None:
    """The option is honoured: at 16 MiB the long line is one more (broken) row, not a failure."""
    runtime = build_runtime(CSV, upstream, max_bytes=4 * LINE_BYTES, max_line_bytes="16MiB")
    await load_good(runtime, CSV, upstream)
    upstream.route(CSV.path, Reply(body=_long_line_body(), content_type=CSV.content_type))
    outcomes = await poll_fault(runtime, 1)
    assert outcomes[0].outcome == "changed", runtime.statuses[FAULTY].last_error


def test_the_cap_has_a_floor() -> None:
    """A cap below 1 KiB would refuse ordinary exports: the config says so up front."""
    with pytest.raises(ValueError, match="greater than or equal to 1024"):
        CsvRecordsConfig(
            id="c", type="csv_records", url="https://x.test/a.csv", id_field="id", max_line_bytes=10
        )

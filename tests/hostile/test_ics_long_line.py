"""A calendar with one endless (folded) content line: the line is dropped, the events kept.

icalendar unfolds a content line and matches it whole: an 8 MB COMMENT folded into 75-byte
lines made it spend about six times the body's size. The connector now drops a content line
over ``max_line_bytes`` before parsing and says so in the source's issues.
"""

from __future__ import annotations

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

ICS = KINDS["ics"]
MB = 1024 * 1024
LINE_BYTES = 8 * MB
#: Body, fetch chunks and decoded text: about 25 MB here, against 57 MB (and 12 s of CPU)
#: when icalendar unfolded and matched the whole line.
MEMORY_BOUND = 5 * LINE_BYTES


def _calendar_with_an_endless_comment() -> bytes:
    """The real calendar with an 8 MB COMMENT, folded as RFC 5545 says, in its first event."""
    folds = b"\r\n ".join([b"y" * 74] * (LINE_BYTES // 74))
    good = ICS.good()
    head, marker, rest = good.partition(b"BEGIN:VEVENT\r\n")
    assert marker, "the calendar has no CRLF-terminated event"
    return head + marker + b"COMMENT:" + folds + b"\r\n" + rest


async def test_endless_content_line_is_dropped_and_the_events_kept(upstream: Upstream) -> None:
    runtime = build_runtime(ICS, upstream, max_bytes=4 * LINE_BYTES)
    await load_good(runtime, ICS, upstream)
    events = runtime.statuses[FAULTY].record_count
    hostile = _calendar_with_an_endless_comment()
    upstream.route(ICS.path, Reply(body=hostile, content_type=ICS.content_type))
    with peak_memory() as peak:
        outcomes = await poll_fault(runtime, 1)
    status = runtime.statuses[FAULTY]
    assert outcomes[0].outcome in ("changed", "unchanged"), status.last_error
    assert state(runtime) == "degraded"  # served, with its issues listed
    assert status.record_count == events
    dropped = [i for i in status.issue_samples if "dropped (over max_line_bytes, 1048576)" in i]
    assert dropped and dropped[0].startswith("line "), status.issue_samples
    assert "COMMENT content line" in dropped[0]
    assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / MB:.0f} MB"
    await check_healthy_unaffected(runtime)

"""What ``/metrics`` says about the sources, read from their statuses at scrape time.

Every process follows the sources' statuses (the poller keeps them, API processes read them
from the shared store), so every process exports the same ``beffroi_source_*`` series: an
alert does not depend on which process holds a source's polling lease, and a scrape that lands
on any worker of ``serve --workers`` sees the same values. Counters (polls, errors) are what a
process counts itself; under ``--workers`` they are summed over the processes of the host by
the Prometheus client's multiprocess mode (see :mod:`aggregator.metrics`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aggregator import __version__
from aggregator.status import SourceState, SourceStatus

#: The realtime feed kinds whose age a GTFS-RT status reports, by their stats key.
REALTIME_KINDS = {
    "trip_updates": "trip_updates_age_s",
    "vehicles": "vehicles_age_s",
    "alerts": "alerts_age_s",
}
STATES = tuple(state.value for state in SourceState)


@dataclass
class ProcessView:
    """What the collector reads of a running process, as callables (read at each scrape)."""

    statuses: Callable[[], dict[str, SourceStatus]]
    store_ok: Callable[[], bool]
    timezone: Callable[[], ZoneInfo]
    #: A source's time-dependent figures (a realtime feed's age), by source id.
    live_stats: Callable[[str], Mapping[str, Any]]
    #: Whether the last configuration reload applied, and when it last did (Unix time).
    reload: Callable[[], tuple[bool, float]]


class SourceCollector(Collector):
    """The sources' state, freshness and content figures, the store, reloads, the build."""

    def __init__(self, view: ProcessView) -> None:
        self._view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        statuses = self._view.statuses()
        state = GaugeMetricFamily(
            "beffroi_source_state",
            "1 for the state the source is in, 0 for the others; state is one of: "
            + ", ".join(STATES)
            + ".",
            labels=["source", "state"],
        )
        stale = _per_source(
            "beffroi_source_stale",
            "1 when the data served for the source is flagged stale (too old, or polls failing).",
        )
        content_stale = _per_source(
            "beffroi_source_content_stale",
            "1 while the content a source serves is out of date although its polls may succeed "
            "(a timetable past its last service day, a feed older than its limit); judged "
            "after every poll.",
        )
        stale_after = _per_source(
            "beffroi_source_stale_after_seconds",
            "How long after its last successful poll the source's data is flagged stale.",
        )
        last_success = _per_source(
            "beffroi_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful poll (absent before the first).",
        )
        failures = _per_source(
            "beffroi_source_consecutive_failures", "Failed polls since the last success."
        )
        records = _per_source(
            "beffroi_source_records", "Records in the snapshot served (absent before the first)."
        )
        required = _per_source(
            "beffroi_source_required", "1 when /readyz waits for the source (`required: true`)."
        )
        realtime_age = GaugeMetricFamily(
            "beffroi_realtime_feed_age_seconds",
            "Age of a realtime feed's content by its own timestamps; kind is one of: "
            + ", ".join(REALTIME_KINDS)
            + ".",
            labels=["source", "kind"],
        )
        valid_until = _per_source(
            "beffroi_gtfs_valid_until_timestamp_seconds",
            "Unix time at which a GTFS timetable's last service day ends (feed_info or calendar).",
        )
        zone = self._view.timezone()
        for source_id, status in sorted(statuses.items()):
            current = status.state(now).value
            for name in STATES:
                state.add_metric([source_id, name], 1.0 if name == current else 0.0)
            stale.add_metric([source_id], float(status.is_stale(now)))
            content_stale.add_metric([source_id], float(status.content_stale is not None))
            stale_after.add_metric([source_id], status.stale_after_s)
            failures.add_metric([source_id], status.consecutive_failures)
            required.add_metric([source_id], float(status.required))
            if status.last_success is not None:
                last_success.add_metric([source_id], status.last_success.timestamp())
            if status.record_count is not None:
                records.add_metric([source_id], status.record_count)
            live = self._view.live_stats(source_id)
            for kind, key in REALTIME_KINDS.items():
                age = live.get(key)
                if isinstance(age, int | float):
                    realtime_age.add_metric([source_id, kind], float(age))
            end = _end_of_service(status.stats.get("valid_until"), zone)
            if end is not None:
                valid_until.add_metric([source_id], end)
        yield from (state, stale, content_stale, stale_after, last_success, failures, records)
        yield required
        yield from (realtime_age, valid_until)

        store = GaugeMetricFamily(
            "beffroi_store_up", "1 when the store answers (always 1 for the memory store)."
        )
        store.add_metric([], float(self._view.store_ok()))
        yield store
        applied, at = self._view.reload()
        yield GaugeMetricFamily(
            "beffroi_config_last_reload_successful",
            "1 when the last configuration reload (or the start) applied the file, 0 if refused.",
            value=float(applied),
        )
        yield GaugeMetricFamily(
            "beffroi_config_last_reload_success_timestamp_seconds",
            "Unix time of the last configuration applied (at start, SIGHUP or admin reload).",
            value=at,
        )
        build = GaugeMetricFamily(
            "beffroi_build_info",
            "Always 1; the version of Beffroi and of Python this process runs.",
            labels=["version", "python"],
        )
        build.add_metric([__version__, ".".join(map(str, sys.version_info[:3]))], 1.0)
        yield build


def _per_source(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["source"])


def _end_of_service(value: Any, zone: ZoneInfo) -> float | None:
    """The end of a timetable's last service day (a ``YYYY-MM-DD``), as Unix time."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).timestamp()

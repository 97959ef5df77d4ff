"""Prometheus metrics: per-source polling figures and per-route request latency.

Each application gets its own registry, so two servers in one test process never
share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    """The instruments; the poller and the API middleware update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.poll_duration = Histogram(
            "beffroi_source_poll_duration_seconds",
            "Time spent on one poll of a source (fetch and parse).",
            ["source"],
            buckets=_FETCH_BUCKETS,
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "beffroi_source_poll_errors_total",
            "Failed polls, by source and kind of failure.",
            ["source", "kind"],
            registry=self.registry,
        )
        self.polls = Counter(
            "beffroi_source_polls_total",
            "Polls, by source and outcome (changed, unchanged, failed).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "beffroi_source_last_success_timestamp_seconds",
            "Unix time of the last successful poll.",
            ["source"],
            registry=self.registry,
        )
        self.records = Gauge(
            "beffroi_source_records",
            "Records in the snapshot currently served.",
            ["source"],
            registry=self.registry,
        )
        self.consecutive_failures = Gauge(
            "beffroi_source_consecutive_failures",
            "Failed polls since the last success.",
            ["source"],
            registry=self.registry,
        )
        self.content_stale = Gauge(
            "beffroi_source_content_stale",
            "1 while the content a source serves is out of date although its polls may "
            "succeed (a timetable past its last service day, a feed older than its limit), "
            "else 0; judged after every poll.",
            ["source"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "beffroi_http_request_duration_seconds",
            "Time to answer an API request, by route template, method and status class.",
            ["route", "method", "status"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )

        self.response_cache = Counter(
            "beffroi_response_cache_total",
            "Cacheable API requests by outcome: hit, miss (computed and kept), pass (not kept).",
            ["outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

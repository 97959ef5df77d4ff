"""Prometheus metrics: per-source polling figures and per-route request latency.

Each application gets its own registry, so two servers in one test process never share
counters. The sources' state is read from their statuses at scrape time
(:mod:`aggregator.source_metrics`), so every process exports it.

Under ``serve --workers`` the supervisor gives its processes a ``PROMETHEUS_MULTIPROC_DIR``:
the Prometheus client then keeps each process's counters and histograms in files there, and
whichever worker a scrape lands on sums them all. Without it, each scrape saw one random
worker's counters (99, 101, 99...), which Prometheus reads as counter resets. Process metrics
(memory, CPU, descriptors) are per process, so that mode leaves them out.
"""

from __future__ import annotations

import os

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aggregator.failures import FailureCode
from aggregator.source_metrics import ProcessView, SourceCollector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "error_kind"]

# A counter's `_created` series doubles the series count for a value nobody alerts on.
prometheus_client.disable_created_metrics()

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: The `kind` label of failed polls, from a failure's class (and HTTP status).
ERROR_KINDS = {
    FailureCode.UNREACHABLE: "unreachable",
    FailureCode.TIMEOUT: "timeout",
    FailureCode.TOO_LARGE: "too_large",
    FailureCode.LOCAL_FILE: "local_file",
    FailureCode.REFUSED_URL: "refused_url",
    FailureCode.FETCH_FAILED: "fetch_failed",
    FailureCode.PARSE_FAILED: "invalid_body",
    FailureCode.NOTHING_MAPPED: "mapping",
    FailureCode.STORE_FAILED: "store",
    FailureCode.INTERNAL: "internal",
}
ERROR_KIND_VALUES = ("http_4xx", "http_5xx", *ERROR_KINDS.values())


def error_kind(code: str | None, http_status: int | None) -> str:
    """The metric's kind of a failure: ``http_4xx``/``http_5xx`` for error statuses."""
    if code == FailureCode.UPSTREAM_STATUS:
        return "http_5xx" if (http_status or 500) >= 500 else "http_4xx"
    try:
        return ERROR_KINDS.get(FailureCode(code), "internal")
    except ValueError:  # no code (a status saved by an older version), or an unknown one
        return "internal"


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
            "Failed polls, by source and kind of failure; kind is one of: "
            + ", ".join(ERROR_KIND_VALUES)
            + ".",
            ["source", "kind"],
            registry=self.registry,
        )
        self.polls = Counter(
            "beffroi_source_polls_total",
            "Polls, by source and outcome; outcome is one of: changed, unchanged, failed, "
            "waiting (for the source it depends on).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.poll_overruns = Counter(
            "beffroi_source_poll_overruns_total",
            "Scheduled runs skipped because the source's previous poll was still running.",
            ["source"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "beffroi_http_request_duration_seconds",
            "Time to answer an API request, by route template, method and status class "
            "(2xx, 3xx, 4xx, 5xx).",
            ["route", "method", "status"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )

        self.response_cache = Counter(
            "beffroi_response_cache_total",
            "Cacheable API requests by outcome; outcome is one of: hit, miss (computed and "
            "kept), pass (not kept).",
            ["outcome"],
            registry=self.registry,
        )

        self._sources: SourceCollector | None = None
        if not self.multiprocess:
            prometheus_client.ProcessCollector(registry=self.registry)
            prometheus_client.PlatformCollector(registry=self.registry)
            prometheus_client.GCCollector(registry=self.registry)

    @property
    def multiprocess(self) -> bool:
        return bool(os.environ.get(MULTIPROCESS_ENV))

    def watch(self, view: ProcessView) -> None:
        """Export the sources (and store, reloads, build) of the process ``view`` reads."""
        self._sources = SourceCollector(view)
        self.registry.register(self._sources)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        # Counters and histograms summed over the host's processes, plus the sources' state
        # as this process reads it from the store (the same in every process).
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        if self._sources is not None:
            registry.register(self._sources)
        return generate_latest(registry)

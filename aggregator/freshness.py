"""Why data counts as stale: the reasons, and what a connector type says of its content.

A source is stale for one of two families of reasons. Its *polls* may have stopped working
(several failures in a row, or no success for longer than ``stale_after``): judged on the real
clock by :class:`aggregator.status.SourceStatus`. Or its *content* may be out of date although
every poll succeeds: a timetable past its last service day, a realtime feed whose header says it
was produced years ago, a bike-share feed whose ``last_updated`` is months old. Only the connector
type can read that from its snapshot (:meth:`aggregator.connector.Connector.content_staleness`),
judged on the data's clock (``clock.fixed`` in a demo replaying old captures keeps them fresh).

Both families end in one state, ``stale``, with one machine-readable ``stale_reason``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class StaleReason(StrEnum):
    """Why a source's data is flagged stale (``stale_reason``)."""

    #: Several polls in a row failed; the last good data is served.
    REPEATED_FAILURES = "repeated_failures"
    #: No poll succeeded for longer than the source's ``stale_after``.
    NO_RECENT_SUCCESS = "no_recent_success"
    #: Polls succeed but what they bring is older than the feed's own freshness limit.
    CONTENT_OUTDATED = "content_outdated"
    #: Polls succeed but the timetable's last service day has passed.
    CONTENT_EXPIRED = "content_expired"
    #: This process cannot reach the shared store: newer data may exist that it cannot see.
    STORE_UNREACHABLE = "store_unreachable"


#: The reasons a connector type may give for its content.
CONTENT_REASONS = frozenset({StaleReason.CONTENT_OUTDATED, StaleReason.CONTENT_EXPIRED})


@dataclass(frozen=True, slots=True)
class ContentStale:
    """A snapshot whose content is out of date, as its connector type judges it."""

    reason: StaleReason
    #: One sentence for operators (no secrets, no URLs): what is old and by how much.
    detail: str
    #: When the content was produced or last valid, when the feed says.
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if self.reason not in CONTENT_REASONS:
            raise ValueError(f"{self.reason} is not a content reason")


def describe_age(seconds: float) -> str:
    """A human span for log lines and details: ``90 s``, ``12 min``, ``5 h``, ``1096 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"

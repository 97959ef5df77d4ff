"""One freshness truth per answer.

Whether a source is stale is judged once per answer and source, here, and everything in that
answer reads the same judgement: ``meta.sources`` (rendering), ``meta.realtime`` and whether
departures and trips show realtime predictions (gtfs_rt views), a bike station's freshness, a
home part's reason code. The judgement lives in the request's state: a composed answer
(``/v1/home``) creates it before calling the endpoints it is made of, whose cloned requests
share it, so its parts and its ``meta`` cannot disagree. A long-lived request (a stream) must
not make one on itself: every request cloned from it would inherit a judgement that never ages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web


class FreshnessSource(Protocol):
    """What judging needs (the runtime): one source's ``meta.sources`` entry at ``now``."""

    def freshness(self, source_id: str, now: datetime) -> dict[str, Any] | None: ...


class AnswerFreshness:
    """The ``meta.sources`` entries of one answer, each computed on first use."""

    def __init__(self, sources: FreshnessSource, now: datetime) -> None:
        self._sources = sources
        #: The real instant ages are measured at (the data's clock may be frozen).
        self.now = now
        self._entries: dict[str, dict[str, Any] | None] = {}

    def of(self, source_id: str) -> dict[str, Any] | None:
        """The source's entry (None for an unknown source)."""
        if source_id not in self._entries:
            self._entries[source_id] = self._sources.freshness(source_id, self.now)
        return self._entries[source_id]

    def is_stale(self, source_id: str) -> bool:
        entry = self.of(source_id)
        return bool(entry is not None and entry["stale"])


_KEY = web.RequestKey("beffroi.answer_freshness", AnswerFreshness)


def answer_freshness(request: web.Request, sources: FreshnessSource) -> AnswerFreshness:
    """The judgement of the answer ``request`` belongs to (made on first use)."""
    memo = request.get(_KEY)
    if not isinstance(memo, AnswerFreshness):
        memo = AnswerFreshness(sources, datetime.now(UTC))
        request[_KEY] = memo
    return memo

"""Per-source health: what the last polls did and what state that puts the source in.

States, from best to worst:

* ``ok`` — the last poll succeeded and every row was usable.
* ``degraded`` — data is served, but the last poll failed (not yet often enough to call
  the data stale) or it succeeded while skipping broken rows.
* ``stale`` — data is served, but it is older than ``stale_after``, several polls in a
  row have failed, or its content is out of date although polls succeed (a timetable past
  its last service day, a realtime feed produced long ago); responses flag it and
  ``stale_reason`` says which (:class:`aggregator.freshness.StaleReason`).
* ``failing`` — polls fail and nothing was ever loaded.
* ``never_loaded`` — no poll has finished yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from aggregator.config.licences import licence_terms
from aggregator.failures import UNEXPECTED, Failure, public_text
from aggregator.freshness import ContentStale, StaleReason

#: Consecutive failed polls after which the data still served counts as stale, whatever its age.
STALE_AFTER_FAILURES = 3
#: How many row-level issues a status keeps as examples.
ISSUE_SAMPLES = 5
#: How many past failures a status remembers for the admin API.
RECENT_ERRORS = 20


class _Shared:
    """The default of a status's ``content`` arguments: the poller's last judgement."""


#: Judge the content as the poller last did (kept in the status, shared through the store).
SHARED = _Shared()


class SourceState(StrEnum):
    NEVER_LOADED = "never_loaded"
    OK = "ok"
    DEGRADED = "degraded"
    STALE = "stale"
    FAILING = "failing"


@lru_cache(maxsize=256)
def _iso(value: datetime | None) -> str | None:
    # Cached: every answer's meta carries its sources' last success, and a source's last
    # success changes once per poll while answers go out thousands of times a second.
    return value.isoformat(timespec="seconds") if value is not None else None


@dataclass
class SourceStatus:
    """The mutable record of one source's polls, owned by the poller."""

    source_id: str
    source_type: str
    title: str | None
    refresh: str
    interval_s: float
    stale_after_s: float
    required: bool
    #: The source's terms of reuse (see aggregator.config.licences).
    licence: str | None = None
    attribution: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_change: datetime | None = None
    #: The last failure in full (redacted): for the log, the admin API and the command line.
    last_error: str | None = None
    #: Its class (failures.FailureCode) and, for an error status, the number: what the public sees.
    last_error_code: str | None = None
    last_error_http_status: int | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    #: When unset, no poll is under way; when set, ``next_run`` is unknown until it ends.
    polling_since: datetime | None = None
    #: Scheduled runs skipped because a poll was still running (a poll slower than its
    #: schedule), in all, and in the poll under way.
    overruns: int = 0
    next_run: datetime | None = None
    last_duration_s: float | None = None
    record_count: int | None = None
    version: int | None = None
    issue_count: int = 0
    issue_samples: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    total_polls: int = 0
    total_failures: int = 0
    #: Why the source has nothing yet although nothing failed (waiting for another source).
    waiting_for: str | None = None
    #: The poller process that polls this source (host:pid:tag), with a shared store.
    polled_by: str | None = None
    #: The last few failures ({at, error}), for the admin API.
    recent_errors: list[dict[str, str]] = field(default_factory=list)
    #: Whether the content is out of date, as the poller last judged it (shared through the
    #: store): a :class:`StaleReason` content value, its detail, and since when (real time).
    content_stale: str | None = None
    content_detail: str | None = None
    content_stale_since: datetime | None = None
    #: How many polls changed the state: answers cached under the old one are void.
    transitions: int = 0

    @property
    def has_data(self) -> bool:
        return self.version is not None

    def state(self, now: datetime, content: ContentStale | _Shared | None = SHARED) -> SourceState:
        """The state at ``now``: data ages even when nobody polls.

        ``content`` is a fresh judgement of the snapshot's content (the runtime makes one per
        answer); without it, the poller's last judgement, kept in this status, counts.
        """
        if not self.has_data:
            return SourceState.FAILING if self.consecutive_failures else SourceState.NEVER_LOADED
        if self.stale_reason(now, content) is not None:
            return SourceState.STALE
        if self.consecutive_failures or self.issue_count:
            return SourceState.DEGRADED
        return SourceState.OK

    def is_stale(self, now: datetime, content: ContentStale | _Shared | None = SHARED) -> bool:
        """Whether the data served for this source should be flagged stale."""
        return self.stale_reason(now, content) is not None

    def stale_reason(
        self, now: datetime, content: ContentStale | _Shared | None = SHARED
    ) -> StaleReason | None:
        """Why the data served is stale (polls first, then content), None when it is not."""
        if not self.has_data or self.last_success is None:
            return None
        if self.consecutive_failures >= STALE_AFTER_FAILURES:
            return StaleReason.REPEATED_FAILURES
        if (now - self.last_success).total_seconds() > self.stale_after_s:
            return StaleReason.NO_RECENT_SUCCESS
        judged = self._content(content)
        return judged.reason if judged is not None else None

    def _content(self, content: ContentStale | _Shared | None) -> ContentStale | None:
        if not isinstance(content, _Shared):
            return content
        if self.content_stale is None:
            return None
        return ContentStale(StaleReason(self.content_stale), self.content_detail or "")

    def note_content(self, content: ContentStale | None, at: datetime) -> tuple[bool, bool]:
        """Keep the poller's judgement of the content; (became stale, became fresh)."""
        was = self.content_stale is not None
        if content is None:
            self.content_stale = self.content_detail = self.content_stale_since = None
            return False, was
        self.content_stale = content.reason.value
        self.content_detail = content.detail
        if not was:
            self.content_stale_since = at
        return not was, False

    def record_success(
        self,
        *,
        at: datetime,
        duration_s: float,
        changed: bool,
        version: int,
        record_count: int,
        issues: tuple[str, ...],
        issue_count: int,
        stats: dict[str, Any],
    ) -> None:
        self.last_attempt = at
        self.last_success = at
        self.last_duration_s = duration_s
        self.consecutive_failures = 0
        self.waiting_for = None
        self.total_polls += 1
        if changed:
            self.last_change = at
            self.version = version
            self.record_count = record_count
            self.issue_count = issue_count
            self.issue_samples = list(issues[:ISSUE_SAMPLES])
            self.stats = dict(stats)

    def record_unchanged(self, *, at: datetime, duration_s: float) -> None:
        """A 304 or an identical body: the data is confirmed fresh, nothing else changes."""
        self.record_success(
            at=at,
            duration_s=duration_s,
            changed=False,
            version=self.version or 0,
            record_count=self.record_count or 0,
            issues=(),
            issue_count=self.issue_count,
            stats=self.stats,
        )

    def record_failure(
        self,
        *,
        at: datetime,
        duration_s: float,
        error: str,
        failure: Failure = UNEXPECTED,
    ) -> None:
        self.last_attempt = at
        self.last_duration_s = duration_s
        self.last_error = error
        self.last_error_code = failure.code.value
        self.last_error_http_status = failure.http_status
        self.last_error_at = at
        entry = {"at": at.isoformat(timespec="seconds"), "code": failure.code.value, "error": error}
        self.recent_errors = [entry, *self.recent_errors][:RECENT_ERRORS]
        self.consecutive_failures += 1
        self.total_polls += 1
        self.total_failures += 1

    def freshness(
        self, now: datetime, content: ContentStale | _Shared | None = SHARED
    ) -> dict[str, Any]:
        """The short form that response ``meta`` blocks carry for each contributing source."""
        age = (now - self.last_success).total_seconds() if self.last_success else None
        reason = self.stale_reason(now, content)
        return {
            "state": self.state(now, content).value,
            "stale": reason is not None,  # stale exactly when the state says so
            "stale_reason": reason.value if reason is not None else None,
            "last_success": _iso(self.last_success),
            "age_s": round(age, 1) if age is not None else None,
            "version": self.version,
            **licence_terms(self.licence, self.attribution),
        }

    def public_error(self) -> str | None:
        """The last failure as the public sees it: its class, never its detail."""
        if self.last_error is None:
            return None
        return public_text(self.last_error_code, self.last_error_http_status)

    def to_json(
        self,
        now: datetime,
        *,
        detail: bool = False,
        content: ContentStale | _Shared | None = SHARED,
    ) -> dict[str, Any]:
        """The form served by ``/v1/sources``; with ``detail`` (the admin API) ``last_error``
        is the full redacted message instead of the failure class's public text, and the
        skipped rows' examples and the polling process (host:pid) are shown."""
        reason = self.stale_reason(now, content)
        judged = self._content(content)
        return {
            "id": self.source_id,
            "type": self.source_type,
            "title": self.title,
            "state": self.state(now, content).value,
            "stale": reason is not None,
            "stale_reason": reason.value if reason is not None else None,
            # The content's own age, whatever the polls do: what a feed's operator must fix.
            "content": {
                "stale": judged is not None,
                "reason": judged.reason.value if judged is not None else None,
                "detail": judged.detail if judged is not None else None,
                "since": _iso(self.content_stale_since) if judged is not None else None,
            },
            "required": self.required,
            **licence_terms(self.licence, self.attribution),
            "refresh": self.refresh,
            "stale_after_s": self.stale_after_s,
            "last_attempt": _iso(self.last_attempt),
            "last_success": _iso(self.last_success),
            "last_change": _iso(self.last_change),
            "last_error": self.last_error if detail else self.public_error(),
            "last_error_code": self.last_error_code if self.last_error is not None else None,
            "waiting_for": self.waiting_for,
            "polled_by": self.polled_by if detail else None,  # a host name and a pid
            "last_error_at": _iso(self.last_error_at),
            "consecutive_failures": self.consecutive_failures,
            "next_run": _iso(self.next_run),
            "polling_since": _iso(self.polling_since),
            "overruns": self.overruns,
            "last_duration_s": (
                round(self.last_duration_s, 4) if self.last_duration_s is not None else None
            ),
            "record_count": self.record_count,
            "version": self.version,
            # Examples quote the feed (values, a realtime feed's URL): the count is public,
            # what was skipped is for the operator.
            "issues": {
                "count": self.issue_count,
                "examples": self.issue_samples if detail else [],
            },
            "polls": {"total": self.total_polls, "failed": self.total_failures},
            "stats": self.stats,
        }


_TIMES = (
    "last_attempt",
    "last_success",
    "last_change",
    "last_error_at",
    "next_run",
    "polling_since",
    "content_stale_since",
)


def status_to_state(status: SourceStatus) -> dict[str, Any]:
    """Every field, JSON-ready: what a poller shares with the other processes."""
    state: dict[str, Any] = {}
    for f in fields(status):
        value = getattr(status, f.name)
        state[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return state


def update_status(status: SourceStatus, state: dict[str, Any]) -> None:
    """Take over a shared state in place (handlers hold references to ``status``)."""
    for f in fields(status):
        if f.name not in state or f.name in ("source_id", "source_type"):
            continue
        value = state[f.name]
        if f.name in _TIMES and isinstance(value, str):
            value = datetime.fromisoformat(value)
        setattr(status, f.name, value)

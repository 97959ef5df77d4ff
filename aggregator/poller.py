"""What one poll of a source does, and when the next comes after a failure.

A poll is fetch (I/O) then parse (pure, in a worker thread). The outcome updates the
source's status; a new snapshot is saved only when the content changed, and a failure
never replaces the data being served. :mod:`aggregator.scheduler` runs the polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aggregator.connector import Connector, DependencyNotReady
from aggregator.failures import UNEXPECTED, Failure, FailureCode, failure_of_fetch
from aggregator.fetch_errors import FetchError
from aggregator.fetch_result import Validators
from aggregator.mapping import NothingMapped
from aggregator.metrics import Metrics, error_kind
from aggregator.model import Snapshot
from aggregator.redact import Redactor
from aggregator.status import SourceState, SourceStatus
from aggregator.store import Store

log = logging.getLogger(__name__)

#: The first retry after a failure comes no later than this, even for a daily source.
FIRST_RETRY_MAX_S = 60.0
#: Backoff never stretches polls further apart than this (or the normal interval if longer).
BACKOFF_CAP_S = 1800.0
#: An upstream's Retry-After is honoured up to this by default (``max_retry_after``).
RETRY_AFTER_CAP_S = 3600.0


def retry_delay(
    interval_s: float,
    failures: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
    retry_after_cap_s: float = RETRY_AFTER_CAP_S,
) -> float:
    """Seconds until the next attempt after ``failures`` consecutive failed polls.

    Slow sources retry sooner than their interval, fast ones back off: the delay starts
    at min(interval, 60 s), doubles per failure and is capped at max(interval, 30 min).
    It is spread by ±10 % so sources failing together do not retry together, and never
    earlier than an upstream's Retry-After, itself honoured up to ``retry_after_cap_s``
    (the source's ``max_retry_after``) or the source's own interval if that is longer.
    """
    base = min(interval_s, FIRST_RETRY_MAX_S)
    cap = max(interval_s, BACKOFF_CAP_S)
    delay = min(base * 2 ** max(failures - 1, 0), cap) * (0.9 + 0.2 * rand())
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(retry_after_cap_s, interval_s)))
    return delay


@dataclass(frozen=True)
class PollOutcome:
    """What one poll did: ``changed``, ``unchanged``, ``failed`` or ``waiting`` (for a source
    it depends on)."""

    outcome: str
    error: str | None = None
    retry_after: float | None = None
    #: The failure's class: what public answers say instead of ``error`` (see failures.py).
    failure: Failure | None = None


class SourceRunner:
    """Polls one source and keeps its status, validators and version."""

    def __init__(
        self,
        connector: Connector,
        status: SourceStatus,
        store: Store,
        fetcher: Any,
        metrics: Metrics,
        redactor: Redactor,
    ) -> None:
        self.connector = connector
        self.status = status
        self._store = store
        self._fetcher = fetcher
        self._metrics = metrics
        self._redactor = redactor
        self._validators: Validators | None = None
        self._content_hash: str | None = None
        self._version = 0
        #: The last snapshot this runner saved or resumed from: whose content it judges.
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        #: Whether the poll under way has already been reported as slower than its schedule.
        self._overran = False
        # A source that depends on another (realtime on a timetable) must be re-parsed when
        # that one changes, even if its own payload did not: keep its (small) payload.
        self.depends_on = frozenset(
            source for source, _type in connector.config.referenced_sources().values()
        )
        self._last_payload: bytes | None = None

    @property
    def source_id(self) -> str:
        return self.status.source_id

    def forget_content(self) -> None:
        """Fetch and parse in full at the next poll (the source's configuration changed)."""
        self._validators = None
        self._content_hash = None

    async def resume(self) -> None:
        """Continue from the snapshot the store holds (a restart or a takeover).

        When the store has lost what this runner saved (a Redis that keeps nothing was
        restarted), forget the validators, so that the next poll fetches, parses and saves
        the data again instead of getting a 304 and leaving the store empty.
        """
        snapshot = await self._store.load_snapshot(self.source_id)
        if snapshot is not None and snapshot.version >= self._version:
            self._version = snapshot.version
            self._content_hash = snapshot.content_hash
            self._snapshot = snapshot
        elif self._version:
            self._validators = None
            self._content_hash = None

    async def run_once(self, *, reparse: bool = False) -> PollOutcome:
        """Poll now; polls of one source never overlap.

        ``reparse`` parses the last payload again even when upstream did not change (a
        source this one depends on did).
        """
        async with self._lock:
            before = self.status.state(datetime.now(UTC))
            failures_before = self.status.consecutive_failures
            # While a poll runs its next run is unknown (retries, backoff): a next run shown
            # in the past beside "ok" told an operator that nothing was happening.
            self.status.polling_since = datetime.now(UTC)
            self.status.next_run = None
            self._overran = False
            await self.share_status()
            started = time.perf_counter()
            try:
                outcome = await self._poll(reparse)
            finally:
                self.status.polling_since = None
            duration = time.perf_counter() - started
            at = datetime.now(UTC)
            if outcome.outcome == "failed":
                self.status.record_failure(
                    at=at,
                    duration_s=duration,
                    error=outcome.error or "",
                    failure=outcome.failure or UNEXPECTED,
                )
            elif outcome.outcome == "unchanged":
                self.status.record_unchanged(at=at, duration_s=duration)
            elif outcome.outcome == "waiting":
                self.status.last_attempt = at
                self.status.waiting_for = outcome.error
            self.status.last_duration_s = duration
            self._judge_content(at)
            if self.status.state(datetime.now(UTC)) is not before:
                self.status.transitions += 1
            self._observe(outcome, duration)
            self._log_transition(before, failures_before, outcome)
            await self._store.save_status(self.status)
            return outcome

    def note_skipped_run(self) -> bool:
        """The scheduler skipped a run because this source's poll is still under way;
        True for the first skip of that poll (the one worth a log line)."""
        self.status.overruns += 1
        self._metrics.poll_overruns.labels(self.source_id).inc()
        first, self._overran = not self._overran, True
        return first

    async def share_status(self) -> None:
        """Save the status for the other processes, unless the store is down (the poll's
        own save at its end reports that)."""
        with contextlib.suppress(Exception):
            await self._store.save_status(self.status)

    async def _poll(self, reparse: bool) -> PollOutcome:
        try:
            fetched = await self.connector.fetch(self._fetcher, self._validators)
        except FetchError as exc:
            return PollOutcome(
                "failed", self._redactor.redact(str(exc)), exc.retry_after, failure_of_fetch(exc)
            )
        except Exception as exc:  # a connector bug must not stop the poller
            log.exception("source %s: unexpected error while fetching", self.source_id)
            message = self._redactor.redact(f"unexpected error: {exc}")
            return PollOutcome("failed", message, failure=UNEXPECTED)
        body = fetched.body
        if fetched.not_modified or fetched.content_hash == self._content_hash:
            self._validators = fetched.validators
            # A dependent source re-parses its last payload when what it depends on changed,
            # or when that payload could not be used yet (it was waiting for it).
            if not ((reparse or self._version == 0) and self._last_payload is not None):
                return PollOutcome("unchanged")
            body = self._last_payload
        elif self.depends_on:
            self._last_payload = body
        try:
            parsed = await asyncio.to_thread(self.connector.parse, body)
        except DependencyNotReady as exc:
            return PollOutcome("waiting", self._redactor.redact(str(exc)))
        except NothingMapped as exc:
            message = self._redactor.redact(str(exc))
            return PollOutcome("failed", message, failure=Failure(FailureCode.NOTHING_MAPPED))
        except Exception as exc:
            # Keep the old validators: the next poll must fetch and parse again, not get a 304.
            message = self._redactor.redact(f"the feed could not be read: {exc}")
            return PollOutcome("failed", message, failure=Failure(FailureCode.PARSE_FAILED))
        at = datetime.now(UTC)
        snapshot = Snapshot(
            source_id=self.source_id,
            source_type=self.status.source_type,
            version=self._version + 1,
            content_hash=fetched.content_hash,
            fetched_at=at,
            data=parsed.data,
            record_count=parsed.record_count,
            issues=parsed.issues,
            stats=dict(parsed.stats),
        )
        try:
            # The payload goes along for data that other processes rebuild by parsing it again.
            await self._store.save_snapshot(snapshot, payload=body)
        except Exception as exc:  # the shared store went away mid-poll
            message = self._redactor.redact(f"the new data was not saved: {exc}")
            return PollOutcome("failed", message, failure=Failure(FailureCode.STORE_FAILED))
        self._version = snapshot.version
        self._snapshot = snapshot
        self.status.record_success(
            at=at,
            duration_s=0.0,
            changed=True,
            version=snapshot.version,
            record_count=parsed.record_count,
            issues=tuple(self._redactor.redact(i) for i in parsed.issues),
            issue_count=parsed.issue_count,
            stats=dict(parsed.stats),
        )
        if not fetched.not_modified:
            self._validators = fetched.validators
            self._content_hash = fetched.content_hash
        return PollOutcome("changed")

    def _judge_content(self, at: datetime) -> None:
        """Judge the served content's age after every poll (a feed that stopped moving, a
        timetable whose last day passed); the status keeps it for every process, the log and
        the metric say when it starts and when it ends, not at every poll."""
        snapshot = self._snapshot
        live = self.connector.context.snapshot_of(self.source_id)
        if live is not None and (snapshot is None or live.version > snapshot.version):
            snapshot = live
        if snapshot is None:
            return
        content = type(self.connector).content_staleness(
            snapshot, self.connector.context.clock.now()
        )
        started, ended = self.status.note_content(content, at)
        if started and content is not None:
            log.warning(
                "source %s content is stale (%s): %s",
                self.source_id,
                content.reason.value,
                content.detail,
            )
        elif ended:
            log.info("source %s content is current again", self.source_id)

    def _observe(self, outcome: PollOutcome, duration: float) -> None:
        # The sources' state, records and last success are read from the status at scrape
        # time (aggregator.source_metrics); what is counted here is what happened.
        source = self.source_id
        self._metrics.poll_duration.labels(source).observe(duration)
        self._metrics.polls.labels(source, outcome.outcome).inc()
        if outcome.outcome == "failed":
            failure = outcome.failure or UNEXPECTED
            kind = error_kind(failure.code, failure.http_status)
            self._metrics.poll_errors.labels(source, kind).inc()

    def _log_transition(
        self, before: SourceState, failures_before: int, outcome: PollOutcome
    ) -> None:
        """Log when a source goes down, goes stale or recovers, not on every poll."""
        failures = self.status.consecutive_failures
        if outcome.outcome == "waiting":
            return
        if outcome.outcome != "failed":
            if failures_before:
                log.info(
                    "source %s recovered after %d failed polls",
                    self.source_id,
                    failures_before,
                    extra=self._fields("recovered"),
                )
            elif before is SourceState.NEVER_LOADED:
                log.info(
                    "source %s loaded: %s records",
                    self.source_id,
                    self.status.record_count,
                    extra=self._fields("loaded"),
                )
            return
        if failures == 1:
            serving = "still serving the last good data" if self.status.has_data else "no data yet"
            log.warning(
                "source %s is failing: %s (%s)",
                self.source_id,
                outcome.error,
                serving,
                extra=self._fields("failing"),
            )
        elif before is not SourceState.STALE and self.status.is_stale(datetime.now(UTC)):
            log.warning(
                "source %s is stale after %d failed polls: %s",
                self.source_id,
                failures,
                outcome.error,
                extra=self._fields("stale"),
            )

    def _fields(self, event: str) -> dict[str, str]:
        """What a JSON log line carries beside the message (see aggregator.logs)."""
        state = self.status.state(datetime.now(UTC)).value
        return {"source": self.source_id, "event": event, "state": state}

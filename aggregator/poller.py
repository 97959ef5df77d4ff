"""Polling: one scheduled job per source, and what one poll does.

A poll is fetch (I/O) then parse (pure, in a worker thread). The outcome updates the
source's status; a new snapshot is saved only when the content changed, and a failure
never replaces the data being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.connector import Connector, DependencyNotReady
from aggregator.failures import UNEXPECTED, Failure, FailureCode, failure_of_fetch
from aggregator.fetch import FetchError, Validators
from aggregator.metrics import Metrics
from aggregator.model import ChangeEvent, Snapshot
from aggregator.redact import Redactor
from aggregator.status import SourceState, SourceStatus
from aggregator.store import Store

log = logging.getLogger(__name__)

#: The first retry after a failure comes no later than this, even for a daily source.
FIRST_RETRY_MAX_S = 60.0
#: Backoff never stretches polls further apart than this (or the normal interval if longer).
BACKOFF_CAP_S = 1800.0
#: An upstream's Retry-After is honoured up to this (a date years ahead is a mistake).
RETRY_AFTER_CAP_S = 6 * 3600.0


def retry_delay(
    interval_s: float,
    failures: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next attempt after ``failures`` consecutive failed polls.

    Slow sources retry sooner than their interval, fast ones back off: the delay starts
    at min(interval, 60 s), doubles per failure and is capped at max(interval, 30 min).
    It is spread by ±10 % so sources failing together do not retry together, and never
    earlier than an upstream's Retry-After.
    """
    base = min(interval_s, FIRST_RETRY_MAX_S)
    cap = max(interval_s, BACKOFF_CAP_S)
    delay = min(base * 2 ** max(failures - 1, 0), cap) * (0.9 + 0.2 * rand())
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(RETRY_AFTER_CAP_S, interval_s)))
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
            started = time.perf_counter()
            outcome = await self._poll(reparse)
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
        self._metrics.content_stale.labels(self.source_id).set(0 if content is None else 1)
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
        source = self.source_id
        self._metrics.poll_duration.labels(source).observe(duration)
        self._metrics.polls.labels(source, outcome.outcome).inc()
        self._metrics.consecutive_failures.labels(source).set(self.status.consecutive_failures)
        if outcome.outcome == "failed":
            kind = "retry_after" if outcome.retry_after else "error"
            self._metrics.poll_errors.labels(source, kind).inc()
        elif outcome.outcome == "waiting":
            pass
        else:
            self._metrics.last_success.labels(source).set(time.time())
            if self.status.record_count is not None:
                self._metrics.records.labels(source).set(self.status.record_count)

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
                    "source %s recovered after %d failed polls", self.source_id, failures_before
                )
            elif before is SourceState.NEVER_LOADED:
                log.info("source %s loaded: %s records", self.source_id, self.status.record_count)
            return
        if failures == 1:
            serving = "still serving the last good data" if self.status.has_data else "no data yet"
            log.warning("source %s is failing: %s (%s)", self.source_id, outcome.error, serving)
        elif before is not SourceState.STALE and self.status.is_stale(datetime.now(UTC)):
            log.warning(
                "source %s is stale after %d failed polls: %s",
                self.source_id,
                failures,
                outcome.error,
            )


def make_trigger(runner: SourceRunner, timezone: Any) -> BaseTrigger:
    """Interval sources are spread by a small jitter; cron sources fire on their schedule."""
    schedule = runner.connector.config.refresh
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone)
    interval = schedule.seconds
    return IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 30.0), timezone=timezone)


class Poller:
    """Runs every source on its own schedule with APScheduler's asyncio scheduler.

    With a shared store, a source is polled only by the poller holding its lease; leases are
    renewed every third of their TTL, so when a poller dies another takes its sources over.
    """

    def __init__(
        self,
        runners: dict[str, SourceRunner],
        timezone: Any,
        *,
        store: Store | None = None,
        owner: str = "",
        lease_ttl: float = 15.0,
    ) -> None:
        self.runners = runners
        self._timezone = timezone
        self._store = store
        self._owner = owner
        self._lease_ttl = lease_ttl
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._held: set[str] = set()
        self._leases: asyncio.Task[None] | None = None
        self._store_down_logged = False

    @property
    def _shared(self) -> bool:
        return self._store is not None and self._store.shared

    async def holds(self, source_id: str) -> bool:
        """Whether this poller polls ``source_id`` (taking its lease if it is free)."""
        return await self._holds(source_id)

    async def _holds(self, source_id: str) -> bool:
        """Whether this poller holds (or just took) the lease on ``source_id``."""
        if not self._shared:
            return True
        assert self._store is not None
        try:
            held = await self._store.acquire(source_id, self._owner)
            self._store_down_logged = False
        except Exception as exc:  # store down: poll nothing, since results could not be shared
            if not self._store_down_logged:
                log.warning("poller: cannot reach the store (%s); polling paused", exc)
                self._store_down_logged = True
            held = False
        if held and source_id not in self._held:
            log.info("poller %s now polls source %s", self._owner, source_id)
            await self.runners[source_id].resume()
        elif not held and source_id in self._held:
            log.info("poller %s no longer polls source %s", self._owner, source_id)
        (self._held.add if held else self._held.discard)(source_id)
        return held

    async def _keep_leases(self) -> None:
        """Renew held leases and take free ones; poll a source at once when taking it over."""
        while True:
            for source_id in self.runners:
                before = source_id in self._held
                if await self._holds(source_id) and not before:
                    self._spawn(self._run(source_id))
            await asyncio.sleep(self._lease_ttl / 3)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=self._timezone)
        self._scheduler = scheduler
        for runner in self.runners.values():
            self._schedule(runner)
        scheduler.start()
        if self._shared:
            self._leases = asyncio.get_running_loop().create_task(self._keep_leases())

    async def _run(self, source_id: str, reparse: bool = False) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            runner = self.runners[source_id]
            if not await self._holds(source_id):
                return  # another poller holds this source
            runner.status.polled_by = self._owner or None
            outcome = await runner.run_once(reparse=reparse)
            self._schedule_next(runner, outcome)
        finally:
            if task is not None:
                self._running.discard(task)

    def _schedule_next(self, runner: SourceRunner, outcome: PollOutcome) -> None:
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return
        job = scheduler.get_job(runner.source_id)
        if job is None:
            return
        if outcome.outcome == "failed":
            delay = retry_delay(
                runner.connector.config.refresh.nominal_interval(),
                runner.status.consecutive_failures,
                outcome.retry_after,
            )
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=delay))
        runner.status.next_run = job.next_run_time

    def _schedule(self, runner: SourceRunner) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._run,
            make_trigger(runner, self._timezone),
            args=[runner.source_id],
            id=runner.source_id,
            name=f"poll {runner.source_id}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),  # load at once, then follow the schedule
        )

    def add(self, runner: SourceRunner) -> None:
        """Start polling a source added by a configuration reload."""
        self.runners[runner.source_id] = runner
        if self._scheduler is not None:
            self._schedule(runner)

    async def remove(self, source_id: str) -> None:
        """Stop polling a source (removed or changed by a reload); hand its lease back."""
        self.runners.pop(source_id, None)
        if self._scheduler is not None and self._scheduler.get_job(source_id) is not None:
            self._scheduler.remove_job(source_id)
        if source_id in self._held and self._store is not None:
            self._held.discard(source_id)
            with contextlib.suppress(Exception):  # if the store is down, the lease lapses
                await self._store.release(source_id, self._owner)

    def store_returned(self) -> None:
        """The shared store answers again: take the leases anew, re-saving lost data."""
        self._held.clear()

    def on_change(self, event: ChangeEvent) -> None:
        """Store listener: re-parse the sources that depend on the one that changed."""
        if self._scheduler is None or not self._scheduler.running:
            return
        for runner in self.runners.values():
            if event.source_id in runner.depends_on:
                self._spawn(self._run(runner.source_id, True))

    async def stop(self) -> None:
        """Stop scheduling and cancel polls under way (their data would arrive too late)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._leases is not None:
            self._leases.cancel()
            await asyncio.gather(self._leases, return_exceptions=True)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._shared and self._store is not None:
            # Hand the sources over at once rather than after the lease TTL.
            for source_id in list(self._held):
                try:
                    await self._store.release(source_id, self._owner)
                except Exception:
                    break  # store down: the leases expire by themselves

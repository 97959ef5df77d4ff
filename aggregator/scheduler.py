"""Running every source's polls on its schedule, and (with a shared store) only on the
poller process holding the source's lease.

Each source is one APScheduler job. What the scheduler does is mirrored in the source's
status so that an operator sees the real next attempt: the normal schedule after a success
(an admin refresh included), the retry after a failure (an upstream's Retry-After honoured
up to the source's ``max_retry_after``), nothing while a poll is under way. A poll slower
than its schedule makes APScheduler skip the runs that fall during it; that is counted and
said once per slow poll, instead of APScheduler's warning at every skipped run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.cancelling import cancel_and_wait
from aggregator.model import ChangeEvent
from aggregator.poller import PollOutcome, SourceRunner, retry_delay
from aggregator.store import Store

log = logging.getLogger(__name__)


class _SkippedRunWarnings(logging.Filter):
    """Drops APScheduler's "maximum number of running instances reached" warning: the
    scheduler reports the skip through an event, which we turn into one line of our own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedRunWarnings())


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
        self._stopping = False
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
        scheduler.add_listener(self._on_skipped_run, EVENT_JOB_MAX_INSTANCES)
        self._scheduler = scheduler
        for runner in self.runners.values():
            self._schedule(runner)
        scheduler.start()
        if self._shared:
            self._leases = asyncio.get_running_loop().create_task(
                self._keep_leases(), name="poller-leases"
            )

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
            await self._schedule_next(runner, outcome)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by stop(): APScheduler would log an expected end as a job error
            # with its traceback, on every stop that found a poll under way.
        finally:
            if task is not None:
                self._running.discard(task)

    async def refresh_now(self, source_id: str) -> PollOutcome:
        """Poll a source now, outside its schedule (the admin refresh), then schedule it as
        any poll would: back to its normal cadence after a success (a source recovered by
        hand no longer waits out its backoff), the documented retry after a failure."""
        runner = self.runners[source_id]
        runner.status.polled_by = self._owner or None
        outcome = await runner.run_once()
        await self._schedule_next(runner, outcome, outside_schedule=True)
        return outcome

    async def _schedule_next(
        self, runner: SourceRunner, outcome: PollOutcome, *, outside_schedule: bool = False
    ) -> None:
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running:
            return
        job = scheduler.get_job(runner.source_id)
        if job is None:
            return
        now = datetime.now(UTC)
        config = runner.connector.config
        if outcome.outcome == "failed":
            delay = retry_delay(
                config.refresh.nominal_interval(),
                runner.status.consecutive_failures,
                outcome.retry_after,
                retry_after_cap_s=config.max_retry_after,
            )
            if outcome.retry_after is not None and outcome.retry_after > delay:
                log.warning(
                    "source %s: the upstream asked to wait %.0f s (Retry-After); the next "
                    "attempt is in %.0f s (max_retry_after)",
                    runner.source_id,
                    outcome.retry_after,
                    delay,
                )
            job.modify(next_run_time=now + timedelta(seconds=delay))
        elif outside_schedule:
            job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))
        # One offset whatever computed it: APScheduler answers in its zone, backoff in UTC.
        next_run = job.next_run_time
        runner.status.next_run = next_run.astimezone(UTC) if next_run is not None else None
        await runner.share_status()  # the poll saved its status before this was known

    def _on_skipped_run(self, event: JobSubmissionEvent) -> None:
        """APScheduler skipped a run: the source's previous poll is still under way."""
        runner = self.runners.get(event.job_id)
        if runner is None:
            return
        if runner.note_skipped_run():
            since = runner.status.polling_since
            running_s = (datetime.now(UTC) - since).total_seconds() if since else 0.0
            log.warning(
                "source %s: a poll has been running for %.0f s, longer than its schedule "
                "(%s); the runs that fall during it are skipped",
                runner.source_id,
                running_s,
                runner.status.refresh,
            )

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
        self._stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        await cancel_and_wait(self._leases)
        await cancel_and_wait(*self._running)
        if self._shared and self._store is not None:
            # Hand the sources over at once rather than after the lease TTL.
            for source_id in list(self._held):
                try:
                    await self._store.release(source_id, self._owner)
                except Exception:
                    break  # store down: the leases expire by themselves

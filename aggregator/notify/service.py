"""The notifier: turns what the feeds say into notifications and delivers them, in the
background, never in the way of the API or the pollers.

After every saved snapshot the store's change event marks its source; the notifier's loop asks
the source's connector type for its notices, records the new ones (fanning them out to the
subscribers of their topics, durably, see :mod:`aggregator.notify.storage`), then sends what is
due, ``concurrency`` at a time. In a shared (Redis) deployment every process accepts
subscriptions but only the holder of the ``notifications`` lease sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from aggregator.cancelling import cancel_and_wait
from aggregator.config.notifications import NotificationsConfig
from aggregator.model import ChangeEvent
from aggregator.notify.notice import Notice
from aggregator.notify.storage import Change, Delivery, open_store
from aggregator.notify.topics import WASTE_PREFIX, parse_zone_set
from aggregator.notify.webpush import PushOutcome, WebPushSender

if TYPE_CHECKING:
    from aggregator.notify.fcm import FcmSender
    from aggregator.runtime import Runtime

log = logging.getLogger(__name__)

#: The lease only one process of a shared deployment holds to send (never a source id: those
#: have no colon).
LEASE = "notifications:sender"
#: Longest wait between two attempts at one notification, whatever Retry-After says.
MAX_RETRY_DELAY_S = 3600.0
#: How often idle subscriptions are looked for.
EXPIRY_EVERY_S = 600.0
#: How long the record of a message sent or given up is kept (diagnostics only: the dedup is
#: the change's own record, kept as long as the database).
DONE_RETENTION_S = 7 * 86400.0
#: Version of the payload format (docs/NOTIFICATIONS.md).
PAYLOAD_VERSION = 1
#: During the evening's reminder window, how often the sender asks the store whether the
#: waste follows changed (a subscription made through another process of a shared
#: deployment, which cannot wake this one): at most this late, its reminder goes out.
REMINDER_RECHECK_S = 60.0
#: How long stopping waits for the round in flight to be answered and recorded. It adds to the
#: rest of a SIGTERM's work, all inside a container's grace period (Docker's default: 10 s):
#: the server first waits up to 2 s for just-accepted connections' requests
#: (aggregator.serving.FIRST_REQUEST_GRACE_S) and lets the requests under way finish (usually
#: milliseconds), then the runtime stops, the notifier first. 5 s leaves the rest of the 10 s
#: for those and for closing the pollers and stores. A batch whose push services take longer
#: is cancelled: what it sent may go again after the restart.
STOP_GRACE_S = 5.0


def database_location(config: NotificationsConfig, base_dir: Path | None) -> str:
    """A PostgreSQL URL as it is; a SQLite file path relative to ``base_dir``."""
    if config.database.startswith(("postgresql://", "postgres://")):
        return config.database
    path = Path(config.database)
    return str(path if path.is_absolute() else (base_dir or Path.cwd()) / path)


def deep_link(config: NotificationsConfig, notice: Notice) -> str | None:
    """The first of the notice's links the deployment has a template for, filled in."""
    for link in notice.links:
        template = getattr(config.deep_links, link.kind)
        if not template or ("{date}" in template and link.date is None):
            continue
        url = template.replace("{id}", quote(link.id, safe=""))
        return url.replace("{date}", quote(link.date or "", safe=""))
    return None


def to_change(config: NotificationsConfig, notice: Notice) -> Change:
    """A notice with its payload in every language, ready to record."""
    url = deep_link(config, notice)
    payloads = {
        language: {
            "v": PAYLOAD_VERSION,
            "kind": notice.kind,
            "id": notice.key,
            "subject": notice.subject,
            "title": title,
            "body": body,
            "lang": language,
            "url": url,
        }
        for language, (title, body) in notice.texts.items()
    }
    return Change(
        notice.key,
        notice.topics,
        notice.collapse,
        notice.urgency,
        payloads,
        late_subscribers=notice.late_subscribers,
    )


def push_topic(collapse: str) -> str:
    """RFC 8030 Topic: at most 32 characters of the URL-safe base64 alphabet."""
    import base64
    import hashlib

    digest = hashlib.sha256(collapse.encode()).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


class Notifier:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config.notifications
        self.store = open_store(database_location(self.config, runtime.config.files_dir))
        self.sender: WebPushSender | None = None
        if self.config.vapid_private_key:
            self.sender = WebPushSender(
                self.config.vapid_private_key,
                self.config.vapid_subject,
                ttl=int(self.config.ttl),
                timeout=self.config.push_timeout,
                concurrency=self.config.concurrency,
            )
        self.fcm: FcmSender | None = None
        if self.config.fcm is not None:
            from aggregator.notify.fcm import FcmSender

            self.fcm = FcmSender(
                self.config.fcm,
                ttl=int(self.config.ttl),
                timeout=self.config.push_timeout,
                concurrency=self.config.concurrency,
            )
        self._clock = clock
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._holding = False
        self._stopping = False
        self._expired_at = 0.0
        #: When each source's time-dependent notices next change (data clock, POSIX s).
        self._timed_at: dict[str, float] = {}
        #: When the followed zone sets' reminders next fall due (data clock), and whether the
        #: followed zone sets changed since they were last looked at.
        self._reminders_at = 0.0
        self._zones_changed = True
        self._reminder_sources: set[str] = set()
        #: The store's waste follows when reminders were last computed, and when (data
        #: clock) the store was last asked: see REMINDER_RECHECK_S.
        self._follows: tuple[int, float] | None = None
        self._follows_checked_at = 0.0
        #: Counters for diagnostics and tests.
        self.counts: dict[str, int] = {"queued": 0, "sent": 0, "gone": 0, "retry": 0, "failed": 0}

    async def start(self) -> None:
        await self.store.open()
        self._dirty.update(self.runtime.connectors)  # what the store already held counts too
        self.runtime.store.subscribe(self.on_change)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notifier")

    def on_change(self, event: ChangeEvent) -> None:
        self._dirty.add(event.source_id)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def topics_changed(self) -> None:
        """A subscription's waste point was set or changed through this process: a reminder
        already due this evening reaches it (its change is recorded once; see
        ``_reminders``). Through another process, the sender finds it in the store."""
        self._zones_changed = True
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            # Asked to end, the loop finishes the round in flight (settling what it sent:
            # cut between a push and its record, the message would go again after a restart)
            # and leaves. Not by cancelling its wait: wait_for returns, swallowing the
            # cancellation, when the wake event is set at that moment (Python 3.11). A round
            # still waiting for push services after STOP_GRACE_S is cancelled.
            self._stopping = True
            self._wake.set()
            await asyncio.wait({self._task}, timeout=STOP_GRACE_S)
            await cancel_and_wait(self._task)  # ended already, or cancelled now
            self._task = None
        if self._holding:
            with contextlib.suppress(Exception):
                await self.runtime.store.release(LEASE, self.runtime.owner)
        if self.sender is not None:
            await self.sender.close()
        if self.fcm is not None:
            await self.fcm.close()
        await self.store.close()

    async def _run(self) -> None:
        while not self._stopping:
            wait = self.config.interval
            try:
                await self.step()
                wait = self._wait()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad round must not end notifications for good
                log.exception("notifications: a round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    def _wait(self) -> float:
        """Seconds until the next round: the interval, or sooner when a time-dependent notice
        (a cancellation entering its hour, an evening reminder) falls due before. Every due
        time is after the data's "now" once a round held the lease, so this never spins."""
        if not self._holding:
            return self.config.interval
        due = [*self._timed_at.values(), self._reminders_at]
        soonest = min(due) - self.runtime.clock.now().timestamp()
        return max(0.0, min(self.config.interval, soonest))

    async def step(self) -> None:
        """One round: take the lease, record new notices, send what is due, expire. Rounds
        never overlap: two would both read the same due messages and send them twice."""
        async with self._round:
            await self._step()

    async def _step(self) -> None:
        self._holding = await self.runtime.store.acquire(LEASE, self.runtime.owner)
        if not self._holding:
            return
        now = self._clock()
        data_now = self.runtime.clock.now()
        dirty, self._dirty = self._dirty, set()
        timed = {s for s, at in self._timed_at.items() if at <= data_now.timestamp()}
        try:
            await self._record(dirty, timed, data_now, now)
        except Exception:
            # Nothing was recorded (one transaction): look at the same sources again next
            # round, or their changes would wait for their data to change again. What is
            # already queued is sent all the same.
            self._dirty |= dirty | timed
            self._zones_changed = True
            log.exception("notifications: this round's changes were not recorded; next round")
        await self._deliver(now)
        if now - self._expired_at >= EXPIRY_EVERY_S:
            self._expired_at = now
            gone = await self.store.expire(
                now - self.config.idle_expiry, done_before=now - DONE_RETENTION_S
            )
            if gone:
                log.info("notifications: %d idle subscriptions expired", gone)

    async def _record(
        self, dirty: set[str], timed: set[str], data_now: datetime, now: float
    ) -> None:
        """Record the notices of the changed sources, of the time-dependent ones now due,
        and the reminders due."""
        changes: list[Change] = []
        for source_id in sorted(dirty | timed):
            try:
                found, next_at = await asyncio.to_thread(self._changes_of, source_id, data_now)
            except Exception:
                # The connector type's fault with this data: trying the same data again each
                # round would fail the same way; its next snapshot is looked at.
                log.exception("notifications: the notices of %s could not be listed", source_id)
                self._timed_at.pop(source_id, None)
                continue
            changes.extend(found)
            if next_at is None:
                self._timed_at.pop(source_id, None)
            else:
                self._timed_at[source_id] = next_at
        changes.extend(await self._reminders(dirty, data_now))
        if changes:
            queued = await self.store.record_changes(changes, now)
            self.counts["queued"] += queued

    def _changes_of(self, source_id: str, data_now: datetime) -> tuple[list[Change], float | None]:
        """The source's notices at ``data_now`` as changes, and when its time-dependent ones
        next change (None: not by time alone). Runs on a worker thread."""
        snapshot = self.runtime.live.snapshot(source_id)
        if snapshot is None:
            return [], None
        connector_type = self.runtime.connector_types.get(snapshot.source_type)
        if connector_type is None:
            return [], None
        notices = list(connector_type.notices(snapshot))
        timed = connector_type.timed_notices(snapshot, data_now)
        notices += timed.notices
        return [to_change(self.config, n) for n in notices], timed.next_at

    async def _reminders(self, dirty: set[str], data_now: datetime) -> list[Change]:
        """Reminders of the followed zone sets (waste collections): looked at when their
        evening time comes, when a source they come from changed, or when a subscription
        changed; only the sets someone follows are computed."""
        due = data_now.timestamp() >= self._reminders_at
        asked = due or self._zones_changed or bool(dirty & self._reminder_sources)
        if not asked and not await self._follows_changed(data_now):
            return []
        self._zones_changed = False
        # Taken before the topics are read: a follow made in between is seen next time.
        self._follows = await self.store.follows_signature(WASTE_PREFIX)
        self._follows_checked_at = data_now.timestamp()
        by_source: dict[str, list[list[str]]] = {}
        for topic in await self.store.followed_topics(WASTE_PREFIX):
            parsed = parse_zone_set(topic)
            if parsed is not None:
                by_source.setdefault(parsed[0], []).append(parsed[1])
        self._reminder_sources = set(by_source)
        # With nobody to remind, look again in a day (or when someone subscribes).
        next_at = data_now.timestamp() + 86400.0
        changes: list[Change] = []
        for source_id, zone_sets in sorted(by_source.items()):
            snapshot = self.runtime.live.snapshot(source_id)
            connector_type = (
                self.runtime.connector_types.get(snapshot.source_type) if snapshot else None
            )
            if snapshot is None or connector_type is None:
                continue
            timed = await asyncio.to_thread(
                connector_type.zone_reminders,
                snapshot,
                zone_sets,
                data_now,
                self.runtime.timezone,
                self.config.waste_reminder_at,
            )
            changes += [to_change(self.config, n) for n in timed.notices]
            if timed.next_at is not None:
                next_at = min(next_at, timed.next_at)
        self._reminders_at = next_at
        return changes

    async def _follows_changed(self, data_now: datetime) -> bool:
        """Whether, during this evening's reminder window, the waste follows in the store
        changed since reminders were computed: a subscription made through another process
        (whose ``topics_changed`` only reaches that process) is reminded too."""
        at = self.config.waste_reminder_at
        local = data_now.astimezone(self.runtime.timezone)
        in_window = local >= datetime.combine(local.date(), at, self.runtime.timezone)
        checked_at = self._follows_checked_at
        if not in_window or data_now.timestamp() - checked_at < REMINDER_RECHECK_S:
            return False
        self._follows_checked_at = data_now.timestamp()
        return await self.store.follows_signature(WASTE_PREFIX) != self._follows

    async def _deliver(self, now: float) -> None:
        """Send everything due, a batch at a time; at most ``concurrency`` in flight, so
        memory follows the concurrency, not the audience."""
        if self.sender is None and self.fcm is None:
            return
        batch_size = self.config.concurrency * 32
        gate = asyncio.Semaphore(self.config.concurrency)
        while True:
            batch = await self.store.due(now, batch_size)
            if not batch:
                return
            outcomes = await asyncio.gather(*(self._deliver_one(d, gate) for d in batch))
            await self._settle(list(zip(batch, outcomes, strict=True)))
            # Asked to stop: the batch just settled is the last one (the rest stays due).
            if len(batch) < batch_size or self._stopping:
                return

    async def _deliver_one(self, delivery: Delivery, gate: asyncio.Semaphore) -> PushOutcome:
        sub = delivery.subscription
        payload: Any = delivery.payloads.get(sub.lang) or next(iter(delivery.payloads.values()))
        topic = push_topic(delivery.collapse)
        async with gate:
            if sub.kind == "fcm":
                if self.fcm is None:  # FCM was configured when it subscribed, not any more
                    return PushOutcome("failed")
                return await self.fcm.send(sub, payload, topic=topic, urgency=delivery.urgency)
            if self.sender is None:
                return PushOutcome("failed")
            return await self.sender.send(
                sub, orjson.dumps(payload), topic=topic, urgency=delivery.urgency
            )

    async def _settle(self, results: list[tuple[Delivery, PushOutcome]]) -> None:
        sent: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        retries: list[tuple[str, str, float]] = []
        gone: list[str] = []
        verdicts: list[str] = []
        for delivery, outcome in results:
            pair = (delivery.change_key, delivery.subscription.id)
            verdicts.append(outcome.verdict)
            if outcome.verdict == "sent":
                sent.append(pair)
            elif outcome.verdict == "gone":
                gone.append(delivery.subscription.id)
            elif outcome.verdict == "retry" and delivery.attempts + 1 < self.config.max_attempts:
                backoff = self.config.retry_base * 2**delivery.attempts
                wait = min(max(backoff, outcome.retry_after or 0.0), MAX_RETRY_DELAY_S)
                retries.append((*pair, self._clock() + wait))
            else:
                log.warning(
                    "notifications: giving up a notification after %d attempts (status %s)",
                    delivery.attempts + 1,
                    outcome.status,
                )
                failed.append(pair)
        await self.store.settle(sent=sent, failed=failed, retries=retries, gone=gone)
        # Counted once stored: whoever reads the counts finds the store saying the same.
        for verdict in verdicts:
            self.counts[verdict] += 1

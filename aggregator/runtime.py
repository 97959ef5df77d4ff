"""Everything one Beffroi process runs, assembled from a validated config."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from redis.exceptions import RedisError

from aggregator import __version__
from aggregator.api.pagination import CursorCodec
from aggregator.cancelling import cancel_and_wait
from aggregator.clock import Clock
from aggregator.communes import CommuneTags
from aggregator.config.models import BeffroiConfig, ConnectorConfig
from aggregator.connector import Connector, ConnectorContext
from aggregator.fetch import Fetcher
from aggregator.follower import Follower
from aggregator.freshness import ContentStale, StaleReason
from aggregator.live import LiveData
from aggregator.metrics import Metrics
from aggregator.model import Snapshot
from aggregator.poller import PollOutcome, SourceRunner
from aggregator.redact import Redactor
from aggregator.scheduler import Poller
from aggregator.source_metrics import ProcessView
from aggregator.status import SourceStatus
from aggregator.store import Store, create_store

if TYPE_CHECKING:
    from aggregator.notify.service import Notifier

log = logging.getLogger(__name__)

Role = Literal["all", "api", "poller"]
#: How often a process checks that the shared store answers.
STORE_CHECK_S = 2.0


class Runtime:
    """Config, connectors, store, live data, poller and metrics of one process.

    Roles: ``all`` polls and serves; ``poller`` polls (and serves too, for its own health
    endpoints); ``api`` only serves, following what pollers save in the shared store.
    """

    def __init__(
        self,
        config: BeffroiConfig,
        connector_types: dict[str, type[Connector]],
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        role: Role = "all",
    ) -> None:
        self.config = config
        self.role = role
        self.connector_types = connector_types
        self.clock = clock or Clock(fixed=config.clock.fixed, start=config.clock.start)
        self.redactor = Redactor(config.secrets)
        self.metrics = Metrics()
        #: Whether the last configuration reload applied, and when one last did (Unix time).
        self.reload_ok = True
        self.reload_at = time.time()
        self.metrics.watch(
            ProcessView(
                statuses=lambda: self.statuses,
                store_ok=lambda: self.store_ok,
                timezone=lambda: self.timezone,
                live_stats=self.live_stats,
                reload=lambda: (self.reload_ok, self.reload_at),
            )
        )
        self.store = store or create_store(config.store)
        if role == "api" and not self.store.shared:
            raise ValueError("the api role needs a shared store (store.backend: redis)")
        #: Who this process is when it holds polling leases.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.store_ok = True
        self.live = LiveData()
        #: The commune of each located record, looked up once per snapshot and commune set.
        self.communes = CommuneTags(self.live)
        self.cursors = CursorCodec(config.server.cursor_secret)
        self.timezone = config.defaults.tzinfo
        self.languages = tuple(config.defaults.languages)
        self.context = ConnectorContext(
            timezone=self.timezone,
            languages=self.languages,
            base_dir=config.files_dir,
            allow_file_urls=config.defaults.allow_file_urls,
            redactor=self.redactor,
            clock=self.clock,
            snapshot_of=self.live.snapshot,
        )
        self.connectors: dict[str, Connector] = {}
        self.statuses: dict[str, SourceStatus] = {}
        for source in config.connectors:
            if source.enabled:
                self.connectors[source.id] = connector_types[source.type](source, self.context)
                self.statuses[source.id] = new_status(source)
        for type_name, connector_type in connector_types.items():
            for name, build in connector_type.index_builders().items():
                self.live.build_eagerly(type_name, name, build)
            for name, (types, combined_build) in connector_type.combined_indexes().items():
                self.live.combine(name, types, combined_build)
        self.store.subscribe(self.live.on_change)
        self.fetcher: Fetcher | None = None
        self.runners: dict[str, SourceRunner] = {}
        self.poller: Poller | None = None
        self.follower: Follower | None = None
        self._store_check: asyncio.Task[None] | None = None
        #: Push notifications, when ``notifications.enabled`` (see aggregator.notify).
        self.notifier: Notifier | None = None

    def new_runner(self, source_id: str) -> SourceRunner:
        """A runner for a configured source (at start, or added by a reload)."""
        assert self.fetcher is not None
        return SourceRunner(
            self.connectors[source_id],
            self.statuses[source_id],
            self.store,
            self.fetcher,
            self.metrics,
            self.redactor,
        )

    async def _ensure_runners(self) -> dict[str, SourceRunner]:
        """One runner per source, kept for the process's life: it holds the validators."""
        if self.fetcher is None:
            self.fetcher = Fetcher(user_agent=self.config.defaults.user_agent)
        if not self.runners:
            self.runners = {source_id: self.new_runner(source_id) for source_id in self.connectors}
            for runner in self.runners.values():
                try:
                    await runner.resume()
                except (RedisError, OSError):
                    # Redis down (or refusing) at start: a poller resumes each source when it
                    # takes its lease, so a process started before Redis waits rather than dies.
                    if not self.store.shared:
                        raise
        return self.runners

    async def start(self, *, poll: bool = True) -> None:
        """Connect the store, adopt what it already holds, and start polling (by role)."""
        await self.store.start()
        if self.store.shared:
            self.follower = Follower(
                self.store, self.live, self.connectors, self.statuses, owner=self.owner
            )
            self.follower.attach()
            self.store.on_resync(self.follower.catch_up)  # type: ignore[attr-defined]
            try:
                await self.follower.catch_up()
            except (RedisError, OSError) as exc:  # Redis down at start: keep trying
                self.store_ok = False
                log.warning("store: cannot reach Redis at start (%s); will keep trying", exc)
            self._store_check = asyncio.get_running_loop().create_task(
                self._check_store(), name="store-check"
            )
        else:
            for source_id in self.connectors:
                snapshot = await self.store.load_snapshot(source_id)
                if isinstance(snapshot, Snapshot):
                    self.live.adopt(snapshot)
        runners = await self._ensure_runners()
        if self.config.notifications.enabled:
            from aggregator.notify.service import Notifier

            self.notifier = Notifier(self)
            await self.notifier.start()
        if poll and self.role != "api":
            self.poller = Poller(
                runners,
                self.timezone,
                store=self.store,
                owner=self.owner,
                lease_ttl=self.config.store.lock_ttl,
            )
            self.store.subscribe(self.poller.on_change)
            await self.poller.start()
        log.info(
            "beffroi %s started (role %s): %d sources, store %s, clock: %s",
            __version__,
            self.role,
            len(self.connectors),
            self.config.store.backend,
            self.clock.describe(),
        )

    async def _check_store(self) -> None:
        """Notice when the shared store goes away and comes back (answers say stale meanwhile)."""
        while True:
            ok = await self.store.ping()
            if ok != self.store_ok:
                if ok:
                    log.info("store: Redis answers again")
                    if self.poller is not None:
                        self.poller.store_returned()
                    if self.follower is not None:
                        await self.follower.catch_up()
                else:
                    log.warning("store: Redis does not answer; serving what this process has")
                self.store_ok = ok
            await asyncio.sleep(STORE_CHECK_S)

    async def stop(self) -> None:
        # First, so that no change announced from now on starts a load (a parse in a thread,
        # an index build) that the steps below would have to wait for or cancel.
        await self.store.stop_listening()
        await cancel_and_wait(self._store_check)  # nor a resync when Redis comes back
        if self.notifier is not None:
            await self.notifier.stop()
            self.notifier = None
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None
        if self.follower is not None:
            await self.follower.close()
        if self.fetcher is not None:
            await self.fetcher.close()
            self.fetcher = None
        self.runners = {}
        await self.live.close()
        await self.store.close()

    async def poll_once(self, source_id: str) -> PollOutcome:
        """Poll one source now, outside the schedule (``beffroi fetch``, ``check --fetch``)."""
        runners = await self._ensure_runners()
        return await runners[source_id].run_once()

    # -- what the API middleware asks -------------------------------------------------

    def content_staleness(self, source_id: str) -> ContentStale | None:
        """Whether the content this process serves for ``source_id`` is out of date now (on
        the data's clock): the one judgement an answer, the status and the boards share."""
        snapshot = self.live.snapshot(source_id)
        if snapshot is None:
            return None
        connector_type = self.connector_types.get(snapshot.source_type)
        if connector_type is None:
            return None
        return connector_type.content_staleness(snapshot, self.clock.now())

    def freshness(self, source_id: str, now: datetime) -> dict[str, Any] | None:
        """A source's ``meta.sources`` entry: the state, whether and why it is stale."""
        status = self.statuses.get(source_id)
        if status is None:
            return None
        fresh = status.freshness(now, self.content_staleness(source_id))
        if not self.store_ok:
            # Newer data may exist that this process cannot see while the store is down.
            fresh["stale"] = True
            fresh["stale_reason"] = fresh["stale_reason"] or StaleReason.STORE_UNREACHABLE.value
            fresh["store"] = "unreachable"
        return fresh

    def live_stats(self, source_id: str) -> Mapping[str, Any]:
        """Figures of a source's data that depend on the time (a realtime feed's age),
        judged on the data's clock; empty before its first snapshot."""
        snapshot = self.live.snapshot(source_id)
        if snapshot is None:
            return {}
        connector_type = self.connector_types[snapshot.source_type]
        return connector_type.live_status(snapshot, self.clock.now())

    def source_json(self, source_id: str, now: datetime, *, detail: bool = False) -> dict[str, Any]:
        """A source's status as ``/v1/sources`` (or, with ``detail``, the admin API) shows it."""
        return self.statuses[source_id].to_json(
            now, detail=detail, content=self.content_staleness(source_id)
        )

    def answer_generation(self) -> int:
        """Changes whenever a cached answer would be wrong: new data (``LiveData.generation``)
        or a source changing state after a poll (a feed that became stale must not keep a
        cached board that calls its predictions fresh)."""
        return self.live.generation + sum(s.transitions for s in self.statuses.values())

    def refresh_interval(self, source_id: str) -> float | None:
        status = self.statuses.get(source_id)
        return status.interval_s if status is not None else None

    def is_ready(self) -> tuple[bool, list[str]]:
        """Ready once every required source is served here; the reasons when not."""
        waiting = [
            f"required source {s.source_id} has not loaded yet"
            for s in self.statuses.values()
            if s.required and self.live.snapshot(s.source_id) is None
        ]
        return (not waiting, waiting)

    def stale_required(self, now: datetime) -> list[str]:
        """Why each required source that is loaded but stale is (``/readyz`` says ``degraded``:
        the process still serves, and taking every process out of the pool would turn old
        data into no data)."""
        reasons = []
        for status in self.statuses.values():
            if not status.required or self.live.snapshot(status.source_id) is None:
                continue
            content = self.content_staleness(status.source_id)
            reason = status.stale_reason(now, content)
            if reason is None:
                continue
            what = f"required source {status.source_id} is stale ({reason.value})"
            if content is not None and reason.value == content.reason.value:
                what += f": {content.detail}"
            reasons.append(what)
        return reasons


def new_status(source: ConnectorConfig) -> SourceStatus:
    """The status of a source that has not been polled yet."""
    return SourceStatus(
        source_id=source.id,
        source_type=source.type,
        title=source.title,
        refresh=source.refresh.describe(),
        interval_s=source.refresh.nominal_interval(),
        stale_after_s=source.stale_after_seconds(),
        required=source.required,
        licence=source.licence,
        attribution=source.attribution,
    )


RUNTIME = web.AppKey("beffroi.runtime", Runtime)


def runtime_of(request: web.Request) -> Runtime:
    """The runtime serving ``request`` (for connector types' handlers)."""
    return request.app[RUNTIME]

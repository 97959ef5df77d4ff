"""Everything one Beffroi process runs, assembled from a validated config."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from aggregator import __version__
from aggregator.api.pagination import CursorCodec
from aggregator.clock import Clock
from aggregator.config.models import BeffroiConfig
from aggregator.connector import Connector, ConnectorContext
from aggregator.fetch import Fetcher
from aggregator.live import LiveData
from aggregator.metrics import Metrics
from aggregator.poller import Poller, PollOutcome, SourceRunner
from aggregator.redact import Redactor
from aggregator.status import SourceStatus
from aggregator.store import Store, create_store

log = logging.getLogger(__name__)


class Runtime:
    """Config, connectors, store, live data, poller and metrics of one process."""

    def __init__(
        self,
        config: BeffroiConfig,
        connector_types: dict[str, type[Connector]],
        *,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.connector_types = connector_types
        self.clock = clock or Clock(fixed=config.clock.fixed, start=config.clock.start)
        self.redactor = Redactor(config.secrets)
        self.metrics = Metrics()
        self.store = store or create_store(config.store.backend)
        self.live = LiveData()
        self.cursors = CursorCodec(config.server.cursor_secret)
        self.timezone = ZoneInfo(config.defaults.timezone)
        self.languages = tuple(config.defaults.languages)
        self.context = ConnectorContext(
            timezone=self.timezone,
            languages=self.languages,
            base_dir=config.base_dir or (config.source_path.parent if config.source_path else None),
            allow_file_urls=config.defaults.allow_file_urls,
            redactor=self.redactor,
            clock=self.clock,
            snapshot_of=self.live.snapshot,
        )
        self.connectors: dict[str, Connector] = {}
        self.statuses: dict[str, SourceStatus] = {}
        for source in config.connectors:
            if not source.enabled:
                continue
            self.connectors[source.id] = connector_types[source.type](source, self.context)
            self.statuses[source.id] = SourceStatus(
                source_id=source.id,
                source_type=source.type,
                title=source.title,
                refresh=source.refresh.describe(),
                interval_s=source.refresh.nominal_interval(),
                stale_after_s=source.stale_after_seconds(),
                required=source.required,
            )
        for type_name, connector_type in connector_types.items():
            for name, build in connector_type.index_builders().items():
                self.live.build_eagerly(type_name, name, build)
            for name, (types, combined_build) in connector_type.combined_indexes().items():
                self.live.combine(name, types, combined_build)
        self.store.subscribe(self.live.on_change)
        self.fetcher: Fetcher | None = None
        self.runners: dict[str, SourceRunner] = {}
        self.poller: Poller | None = None

    async def _ensure_runners(self) -> dict[str, SourceRunner]:
        """One runner per source, kept for the process's life: it holds the validators."""
        if self.fetcher is None:
            self.fetcher = Fetcher(user_agent=self.config.defaults.user_agent)
        if not self.runners:
            self.runners = {
                source_id: SourceRunner(
                    connector,
                    self.statuses[source_id],
                    self.store,
                    self.fetcher,
                    self.metrics,
                    self.redactor,
                )
                for source_id, connector in self.connectors.items()
            }
            for runner in self.runners.values():
                await runner.resume()
        return self.runners

    async def start(self, *, poll: bool = True) -> None:
        """Connect the store, adopt what it already holds, and start polling."""
        await self.store.start()
        for source_id in self.connectors:
            snapshot = await self.store.load_snapshot(source_id)
            if snapshot is not None:
                self.live.adopt(snapshot)
        runners = await self._ensure_runners()
        if poll:
            self.poller = Poller(runners, self.timezone)
            self.store.subscribe(self.poller.on_change)
            await self.poller.start()
        log.info(
            "beffroi %s started: %d sources, store %s",
            __version__,
            len(self.connectors),
            self.config.store.backend,
        )

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None
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

    def freshness(self, source_id: str, now: datetime) -> dict[str, Any] | None:
        status = self.statuses.get(source_id)
        return status.freshness(now) if status is not None else None

    def refresh_interval(self, source_id: str) -> float | None:
        status = self.statuses.get(source_id)
        return status.interval_s if status is not None else None

    def is_ready(self) -> tuple[bool, list[str]]:
        """Ready once every required source has data; the reasons when not."""
        waiting = [
            f"required source {s.source_id} has not loaded yet"
            for s in self.statuses.values()
            if s.required and not s.has_data
        ]
        return (not waiting, waiting)


RUNTIME = web.AppKey("beffroi.runtime", Runtime)


def runtime_of(request: web.Request) -> Runtime:
    """The runtime serving ``request`` (for connector types' handlers)."""
    return request.app[RUNTIME]

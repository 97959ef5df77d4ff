"""Keeping this process's live data in step with a shared store.

When another process saves a snapshot, the store announces its version; the follower loads
it in the background, rebuilds the data (JSON, or the upstream payload parsed again here)
and hands it to :class:`~aggregator.live.LiveData`. Requests never wait on any of this: they
keep reading the previous snapshot until the new one is ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping

import orjson

from aggregator.cancelling import cancel_and_wait
from aggregator.connector import Connector, DependencyNotReady
from aggregator.live import LiveData
from aggregator.model import ChangeEvent, Snapshot
from aggregator.status import SourceStatus, update_status
from aggregator.store import Shipped, Store
from aggregator.store.base import STORE_FORMAT

log = logging.getLogger(__name__)


class Follower:
    """Loads what other processes publish; retries what waits for another source."""

    def __init__(
        self,
        store: Store,
        live: LiveData,
        connectors: Mapping[str, Connector],
        statuses: Mapping[str, SourceStatus],
        owner: str = "",
    ) -> None:
        self._store = store
        #: This process as a poller (host:pid:tag): the statuses it writes are not read back.
        self._owner = owner
        self._live = live
        self._connectors = connectors
        self._statuses = statuses
        self._tasks: set[asyncio.Task[None]] = set()
        self._loading: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._waiting: set[str] = set()
        #: (source, store format) pairs already logged as too new to read.
        self._newer_formats_seen: set[tuple[str, int]] = set()

    def attach(self) -> None:
        self._store.subscribe(self.on_change)
        self._store.subscribe_status(self.on_status)

    async def catch_up(self) -> None:
        """Load every status and every snapshot newer than ours (at start, after an outage)."""
        for source_id, state in (await self._store.load_statuses()).items():
            self.on_status(source_id, state)
        await asyncio.gather(*(self._load(source_id) for source_id in self._connectors))

    def on_status(self, source_id: str, state: dict) -> None:
        status = self._statuses.get(source_id)
        if status is None:
            return
        if self._owner and state.get("polled_by") == self._owner:
            # This process polls the source: its own status is the newest. A state it saved
            # earlier (when a poll started) arriving after the poll ended would undo it.
            return
        update_status(status, state)

    def on_change(self, event: ChangeEvent) -> None:
        if event.snapshot is not None or event.source_id not in self._connectors:
            return  # our own save (already adopted), or a source this config does not have
        current = self._live.snapshot(event.source_id)
        if current is not None and current.version >= event.version:
            return
        self._spawn(self._load(event.source_id))

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self, source_id: str) -> None:
        async with self._loading[source_id]:
            try:
                shipped = await self._store.load_snapshot(source_id)
            except Exception as exc:  # the store is down: the health loop will catch up
                log.debug("could not load %s from the store: %s", source_id, exc)
                return
            current = self._live.snapshot(source_id)
            if shipped is None or (current is not None and current.version >= shipped.version):
                return
            snapshot = await self._materialize(shipped)
            if snapshot is None:
                return
            try:
                self._live.adopt(snapshot)
            except Exception:  # an index that cannot be built: keep serving the previous data
                log.exception("could not index %s version %d", source_id, shipped.version)
                return
            self._waiting.discard(source_id)
        # Sources waiting for this one (realtime waiting for its timetable) can go now.
        for other in list(self._waiting):
            self._spawn(self._load(other))

    async def _materialize(self, shipped: Snapshot | Shipped) -> Snapshot | None:
        if isinstance(shipped, Snapshot):
            return shipped
        if shipped.encoding == "json" and shipped.store_format > STORE_FORMAT:
            # A newer writer during a rolling upgrade: its data may not have the shape this
            # code expects. Keep what this process serves until it is upgraded too.
            key = (shipped.source_id, shipped.store_format)
            if key not in self._newer_formats_seen:
                self._newer_formats_seen.add(key)
                log.warning(
                    "source %s: the store holds version %d written by beffroi %s in store "
                    "format %d, newer than this process reads (%d); keeping the data it has "
                    "until it is upgraded",
                    shipped.source_id,
                    shipped.version,
                    shipped.writer or "?",
                    shipped.store_format,
                    STORE_FORMAT,
                )
            return None
        try:
            if shipped.encoding == "json":
                data = await asyncio.to_thread(orjson.loads, shipped.body)
            else:
                connector = self._connectors[shipped.source_id]
                data = (await asyncio.to_thread(connector.parse, shipped.body)).data
        except DependencyNotReady:
            self._waiting.add(shipped.source_id)
            return None
        except Exception:
            log.exception("could not rebuild %s version %d", shipped.source_id, shipped.version)
            return None
        return Snapshot(
            source_id=shipped.source_id,
            source_type=shipped.source_type,
            version=shipped.version,
            content_hash=shipped.content_hash,
            fetched_at=shipped.fetched_at,
            data=data,
            record_count=shipped.record_count,
            issues=shipped.issues,
            stats=shipped.stats,
        )

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)

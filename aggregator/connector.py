"""The small SDK a connector type is written against.

A connector type is a class with:

* ``type_name`` and ``config_model`` (a subclass of :class:`ConnectorConfig` whose
  fields are the type-specific YAML keys);
* ``async fetch(fetcher, validators)`` — I/O only, returns the raw payload;
* ``parse(payload)`` — pure, bytes in, a :class:`ParseResult` out; it runs in a worker
  thread so a large feed never blocks the event loop;
* optionally ``register_routes(router)`` to add API endpoints,
  ``index_builders()`` for indexes to build whenever a snapshot of that type arrives, and
  the other class methods below (notifications, communes, OGC collections...).

It is registered under the ``beffroi.connectors`` entry-point group; built-in types
register exactly the same way (see ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from aggregator.clock import Clock
from aggregator.config.models import ConnectorConfig, UrlConnectorConfig
from aggregator.fetch import Fetcher
from aggregator.fetch_result import FetchResult, Validators
from aggregator.freshness import ContentStale
from aggregator.model import ParseResult, Snapshot
from aggregator.redact import Redactor

if TYPE_CHECKING:
    from aggregator.api.features_layers import FeatureKind
    from aggregator.api.routing import ApiRouter
    from aggregator.notify.notice import Notice, TimedNotices

ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)

__all__ = [
    "Connector",
    "ConnectorConfig",
    "ConnectorContext",
    "DependencyNotReady",
    "ParseResult",
    "Snapshot",
    "UrlConnector",
    "UrlConnectorConfig",
]


class DependencyNotReady(Exception):
    """Raised by ``parse`` when a source this one needs has no data yet.

    The poll is not counted as a failure: the source waits, and is polled again as soon as
    the source it needs loads.
    """


@dataclass(frozen=True)
class ConnectorContext:
    """What every connector may know about the deployment it runs in."""

    timezone: ZoneInfo
    languages: tuple[str, ...]
    base_dir: Path | None
    allow_file_urls: bool
    redactor: Redactor
    clock: Clock
    #: The current snapshot of another source (a realtime feed reads its timetable's).
    snapshot_of: Callable[[str], Snapshot | None] = field(default=lambda _source_id: None)


class Connector(Generic[ConfigT]):
    """Base class of every connector type."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        """Get the raw payload from upstream; I/O only, no interpretation."""
        raise NotImplementedError(f"{type(self).__name__} does not implement fetch")

    async def fetch_configured(
        self, fetcher: Fetcher, url: str, validators: Validators | None
    ) -> FetchResult:
        """Fetch one URL of the config with the source's limits, headers and file rules."""
        config = self.config
        return await fetcher.fetch(
            url,
            timeout=config.timeout,
            max_bytes=config.max_bytes,
            headers=config.headers,
            validators=validators,
            retries=config.retries,
            base_dir=self.context.base_dir,
            allow_file=self.context.allow_file_urls,
            redactor=self.context.redactor,
        )

    def parse(self, payload: bytes) -> ParseResult:
        """Turn a payload into records; pure, so it is testable with bytes alone."""
        raise NotImplementedError(f"{type(self).__name__} does not implement parse")

    @classmethod
    def records(cls, snapshot: Snapshot) -> Sequence[Mapping[str, Any]] | None:
        """The snapshot as a list of plain records, when the type has such a view."""
        return snapshot.data if isinstance(snapshot.data, list) else None

    @classmethod
    def located_points(cls, snapshot: Snapshot) -> tuple[Any, Any] | None:
        """(longitudes, latitudes) of the snapshot's located records, for the communes its
        data covers (the catalogue's spatial coverage); None when it has no places.

        By default, the ``lat``/``lon`` (or ``location.lat``/``location.lon``) of
        :meth:`records`; types whose data is not a list of records say it themselves.
        """
        from aggregator.communes import record_coordinates

        records = cls.records(snapshot)
        return None if records is None else record_coordinates(records)

    @classmethod
    def live_status(cls, snapshot: Snapshot, now: datetime) -> Mapping[str, Any]:
        """Figures that change with time alone, added to the source's status when it is read."""
        return {}

    @classmethod
    def content_staleness(cls, snapshot: Snapshot, now: datetime) -> ContentStale | None:
        """Whether the snapshot's content is out of date at ``now`` (the data's clock), and
        why; None when it is current or when the type cannot tell. Cheap: it runs once per
        answer that names the source, and after every poll."""
        return None

    @classmethod
    def notices(cls, snapshot: Snapshot) -> Sequence[Notice]:
        """What subscribers of notifications should know about this snapshot (active alerts,
        agenda items...), every one keyed by its content; none by default."""
        return ()

    @classmethod
    def timed_notices(cls, snapshot: Snapshot, now: datetime) -> TimedNotices:
        """Notices that depend on the time as well as the data (a cancelled trip becomes news
        an hour before it was due), at ``now`` (the data's clock), with when to ask again;
        none by default. The notifier asks after every change of the source and at
        ``next_at``, so a notice enters its window even when the feed says nothing new."""
        from aggregator.notify.notice import TimedNotices

        return TimedNotices([], None)

    @classmethod
    def topic_key(cls, live: Any, snapshot: Snapshot, kind: str, value: str) -> str | None:
        """The canonical form of ``value`` when it names a ``kind`` this snapshot knows, which
        notifications may then follow (``news_category``: a category of its items, folded;
        ``news_source``: any value, when the type is a news source); None by default.
        ``live`` is the runtime's live data (its indexes)."""
        return None

    @classmethod
    def zones_at(cls, live: Any, source_id: str, lat: float, lon: float) -> list[str]:
        """The zones of ``source_id`` (native ids) covering a point, which notifications may
        follow (waste collection zones); ``live`` is the runtime's live data. None by default."""
        return []

    @classmethod
    def zone_reminders(
        cls,
        snapshot: Snapshot,
        zone_sets: Sequence[Sequence[str]],
        now: datetime,
        timezone: ZoneInfo,
        at: time,
    ) -> TimedNotices:
        """Reminders due at ``now`` for the followed ``zone_sets`` (each the zones one
        followed point lies in), ``at`` being the local time they go out; none by default."""
        from aggregator.notify.notice import TimedNotices

        return TimedNotices([], None)

    @classmethod
    def has_topic(cls, snapshot: Snapshot, kind: str, native_id: str) -> bool:
        """Whether ``native_id`` names a ``kind`` (``line``, ``stop``) of this snapshot, which
        notifications may then follow; no by default."""
        return False

    @classmethod
    def register_routes(cls, router: ApiRouter) -> None:
        """Add this type's endpoints (once per type, whether or not a source uses it)."""

    @classmethod
    def feature_kind(cls) -> FeatureKind | None:
        """The kind of located record each source of this type serves as an OGC API
        Features collection (``/ogc/collections/{source id}``): its name, its properties'
        schema and how to build a source's layer of features; None (the default): the
        type's sources are no collection."""
        return None

    @classmethod
    def index_builders(cls) -> Mapping[str, Callable[[Snapshot], Any]]:
        """Indexes to build as soon as a snapshot of this type arrives, by name."""
        return {}

    @classmethod
    def combined_indexes(cls) -> Mapping[str, tuple[frozenset[str], Any]]:
        """Indexes over every source of some types: ``{name: (types, build)}``.

        ``build(snapshots_by_id, previous_index)`` runs in a worker thread when one of those
        sources changes (see :meth:`aggregator.live.LiveData.combine`).
        """
        return {}


class UrlConnector(Connector[ConfigT]):
    """A connector whose payload is the body of the one URL in its config."""

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        config = self.config
        assert isinstance(config, UrlConnectorConfig)
        return await self.fetch_configured(fetcher, config.url, validators)

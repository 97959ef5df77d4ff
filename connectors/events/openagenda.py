"""``openagenda``: one agenda of the OpenAgenda API v2, kept in sync incrementally.

The first poll loads every current and upcoming event (cursor paging with ``after``).
Later polls ask only for what changed since the last sync (``updatedAt[gte]``, sorted by
``updatedAt.asc``) with ``removed=null``, which makes the API also return the events
removed since then as ``{uid, removed: true, updatedAt}`` tombstones. That is the
documented v2 sync recipe (research/events.md §1); v2 has no separate "deleted" endpoint.
The merged set of raw events lives in the connector between polls; ``fetch`` hands
``parse`` the whole merged set, so ``parse`` stays pure and a failed delta changes nothing.
A full reload every ``full_resync`` heals anything a delta may have missed.

The key is sent in the ``key`` header, never in a URL (URLs end up in logs)::

    - id: oa-lille
      type: openagenda
      agenda_uid: "12345678"
      api_key: ${OPENAGENDA_KEY}

A saved export of an agenda's events (``export_url``, e.g. a ``file:`` on disk or a static
mirror) is read whole instead, like an Opendatasoft ``export_url``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import AfterValidator, Field, model_validator

from aggregator.config.models import ConnectorConfig, check_source_url
from aggregator.config.types import Duration
from aggregator.connector import Connector
from aggregator.fetch import Fetcher
from aggregator.fetch_errors import FetchError
from aggregator.fetch_result import FetchResult, Validators
from aggregator.model import ParseResult
from connectors.events.api import EventSourceType
from connectors.events.model import make_occurrence, recurrence_stamp
from connectors.events.text import description_pair, fold

__all__ = ["STATUS_CODES", "OpenAgendaConfig", "OpenAgendaConnector", "OpenAgendaError"]

#: OpenAgenda event status codes → ours (≈ schema.org eventStatus).
STATUS_CODES = {
    1: "scheduled",
    2: "rescheduled",
    3: "moved_online",
    4: "postponed",
    5: "full",
    6: "cancelled",
}
ACCESSIBILITY = {
    "hi": "hearing",
    "vi": "visual",
    "mi": "motor",
    "pi": "mental",
    "ii": "intellectual",
}
ATTENDANCE = {1: "offline", 2: "online", 3: "mixed"}
# Words that mean "free of charge" in OpenAgenda's free-text conditions.
_FREE_WORDS = ("gratuit", "entree libre", "free", "acces libre")
#: A safety overlap on updatedAt[gte]: clocks differ, and merging twice is harmless.
SYNC_OVERLAP = timedelta(minutes=5)


class OpenAgendaError(FetchError):
    """OpenAgenda answered, but not with a usable page (error JSON, HTML, bad shape)."""


class OpenAgendaConfig(ConnectorConfig):
    """Keys of an ``openagenda`` source."""

    agenda_uid: str | None = None
    #: Named ``api_key`` so the config loader treats it as a secret and redacts it.
    api_key: str | None = Field(None, repr=False)
    base_url: str = "https://api.openagenda.com/v2"
    #: Instead of the API: a saved export of the agenda's events (the JSON an agenda's export
    #: or the API gives: a document with an ``events`` list, or the list itself), e.g. a file
    #: on disk (``file:``) or a static mirror. Read whole; no key, no paging.
    export_url: Annotated[str, AfterValidator(check_source_url)] | None = None
    channel: Literal["events", "agenda"] = "events"
    categories: list[str] = Field(default_factory=list)
    page_size: int = Field(100, ge=1, le=300)
    max_events: int = Field(20_000, ge=1)
    full_resync: Duration = 86400.0

    @model_validator(mode="after")
    def _api_or_export(self) -> OpenAgendaConfig:
        if self.export_url is None and (not self.agenda_uid or not self.api_key):
            raise ValueError("give agenda_uid and api_key (the OpenAgenda API), or export_url")
        if self.export_url is not None and self.agenda_uid:
            raise ValueError("give either export_url or agenda_uid and api_key, not both")
        return self

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        return {("export_url",): self.export_url} if self.export_url else {}


class OpenAgendaConnector(EventSourceType, Connector[OpenAgendaConfig]):
    """Occurrences (``timings``) of the events of one OpenAgenda agenda."""

    type_name = "openagenda"
    config_model = OpenAgendaConfig

    def __init__(self, config: OpenAgendaConfig, context: Any) -> None:
        super().__init__(config, context)
        self._events: dict[str, dict[str, Any]] | None = None
        self._synced_at: datetime | None = None
        self._full_at = 0.0
        self.last_sync: dict[str, Any] = {}

    @property
    def events_url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}/agendas/{self.config.agenda_uid}/events"

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        config = self.config
        if config.export_url is not None:
            return await self.fetch_configured(fetcher, config.export_url, validators)
        started, began = datetime.now(UTC), time.monotonic()
        full = self._events is None or time.monotonic() - self._full_at >= config.full_resync
        params: dict[str, Any] = {"size": config.page_size, "detailed": 1}
        if full:
            params["relative[]"] = ["current", "upcoming"]
        else:
            assert self._synced_at is not None
            since = self._synced_at - SYNC_OVERLAP
            params |= {
                "updatedAt[gte]": since.isoformat().replace("+00:00", "Z"),
                "sort": "updatedAt.asc",
                "removed": "null",
            }
        events: dict[str, dict[str, Any]] = {} if full else dict(self._events or {})
        pages = attempts = changed = removed = 0
        after: Any = None
        while True:
            page_params = dict(params)
            if after is not None:
                page_params["after[]" if isinstance(after, list) else "after"] = after
            page, tries = await self._page(fetcher, page_params)
            pages, attempts = pages + 1, attempts + tries
            for event in page["events"]:
                uid = str(event.get("uid", ""))
                if not uid:
                    continue
                if event.get("removed"):
                    removed += events.pop(uid, None) is not None
                else:
                    events[uid] = event
                    changed += 1
            after = page.get("after")
            if not page["events"] or after in (None, [], "") or len(events) >= config.max_events:
                break
        # Only a complete sync is committed: a failure above leaves the previous state intact.
        self._events, self._synced_at = events, started
        if full:
            self._full_at = time.monotonic()
        self.last_sync = {
            "mode": "full" if full else "incremental",
            "pages": pages,
            "changed": changed,
            "removed": removed,
            "events": len(events),
        }
        body = orjson.dumps(
            {"events": [events[k] for k in sorted(events)], "sync": self.last_sync},
            option=orjson.OPT_SORT_KEYS,
        )
        return FetchResult(
            url=self.events_url,
            not_modified=False,
            body=body,
            content_type="application/json",
            validators=Validators(),
            status=200,
            attempts=attempts,
            elapsed=time.monotonic() - began,
            content_hash=hashlib.sha256(body).hexdigest(),
        )

    async def _page(self, fetcher: Fetcher, params: Mapping[str, Any]) -> tuple[dict, int]:
        config = self.config
        url = _with_query(self.events_url, params)
        result = await fetcher.fetch(
            url,
            timeout=config.timeout,
            max_bytes=config.max_bytes,
            headers={**config.headers, "key": config.api_key or ""},
            retries=config.retries,
            base_dir=self.context.base_dir,
            allow_file=self.context.allow_file_urls,
            redactor=self.context.redactor,
        )
        try:
            page = orjson.loads(result.body)
        except orjson.JSONDecodeError:
            raise OpenAgendaError("OpenAgenda answered with something not JSON", url=url) from None
        if not isinstance(page, dict) or page.get("success") is False:
            message = page.get("message") or page.get("error") if isinstance(page, dict) else None
            raise OpenAgendaError(f"OpenAgenda error: {message or 'unsuccessful answer'}", url=url)
        if not isinstance(page.get("events"), list):
            raise OpenAgendaError("OpenAgenda answer has no 'events' list", url=url)
        return page, result.attempts

    def parse(self, payload: bytes) -> ParseResult:
        try:
            document = orjson.loads(payload)
            # A saved export may be the bare list of events; the API (and our own sync
            # document) wraps it in {"events": [...]}.
            events = document if isinstance(document, list) else document["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ValueError("not an OpenAgenda events document") from None
        if not isinstance(events, list):
            raise ValueError("not an OpenAgenda events document: 'events' is not a list")
        records: list[dict[str, Any]] = []
        issues: list[str] = []
        for event in events:
            try:
                records.extend(self._occurrences(event))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                issues.append(f"event {event.get('uid')!r} skipped: {exc}")
        records.sort(key=lambda r: (r["start"], r["id"]))
        return ParseResult(
            data=records,
            record_count=len(records),
            issues=tuple(issues[:50]),
            issue_total=len(issues),
            stats={
                "events": len(events),
                "occurrences": len(records),
                **(document.get("sync", {}) if isinstance(document, dict) else {}),
            },
        )

    def _occurrences(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        zone_name = (
            event.get("timezone")
            or (event.get("location") or {}).get("timezone")
            or str(self.context.timezone)
        )
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone, zone_name = self.context.timezone, str(self.context.timezone)
        common = _common_fields(event)
        uid = str(event["uid"])
        out = []
        for timing in event.get("timings") or []:
            begin = datetime.fromisoformat(timing["begin"]).astimezone(zone)
            end = (
                datetime.fromisoformat(timing["end"]).astimezone(zone)
                if timing.get("end")
                else None
            )
            out.append(
                make_occurrence(
                    source=self.config.id,
                    uid=uid,
                    recurrence=recurrence_stamp(begin),
                    channel=self.config.channel,
                    start=begin,
                    end=end,
                    timezone=zone_name,
                    categories=list(self.config.categories),
                    **common,
                )
            )
        return out


def _common_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every occurrence of an OpenAgenda event shares."""
    long = event.get("longDescription") or {}
    short = event.get("description") or {}
    html: dict[str, str] = {}
    text: dict[str, str] = {}
    for lang in {*long, *short}:
        pair = description_pair(long.get(lang) or short.get(lang))
        if pair:
            html[lang], text[lang] = pair
    location = event.get("location") or {}
    conditions = {k: v for k, v in (event.get("conditions") or {}).items() if v}
    free = True if any(w in fold(" ".join(conditions.values())) for w in _FREE_WORDS) else None
    updated = event.get("updatedAt")
    return {
        "title": event.get("title") or {},
        "description": text,
        "description_html": html,
        "status": STATUS_CODES.get(int(event.get("status") or 1), "scheduled"),
        "location": {
            "name": location.get("name"),
            "address": location.get("address"),
            "city": location.get("city"),
            "postal_code": location.get("postalCode"),
            "lat": location.get("latitude"),
            "lon": location.get("longitude"),
        }
        if location
        else None,
        "attendance_mode": ATTENDANCE.get(int(event.get("attendanceMode") or 1), "offline"),
        "online_url": event.get("onlineAccessLink"),
        "keywords": event.get("keywords") or {},
        "accessibility": [
            ours
            for code, ours in ACCESSIBILITY.items()
            if (event.get("accessibility") or {}).get(code)
        ],
        "price": {"free": free, "text": conditions},
        "registration": [
            {"type": str(r.get("type")), "value": str(r.get("value"))}
            for r in event.get("registration") or []
            if isinstance(r, Mapping) and r.get("value")
        ],
        "age": event.get("age") if isinstance(event.get("age"), Mapping) else None,
        "image": _image(event),
        "url": event.get("canonicalUrl"),
        "updated_at": datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None,
    }


def _image(event: Mapping[str, Any]) -> dict[str, Any] | None:
    image = event.get("image")
    if not isinstance(image, Mapping) or not image.get("base"):
        return None
    base = image["base"]
    thumb = next(
        (v.get("filename") for v in image.get("variants") or [] if v.get("type") == "thumbnail"),
        None,
    )
    return {
        "url": base + image.get("filename", ""),
        "thumb_url": base + thumb if thumb else None,
        "credits": event.get("imageCredits"),
    }


def _with_query(url: str, params: Mapping[str, Any]) -> str:
    from urllib.parse import urlencode

    pairs = []
    for name, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item)))
    return f"{url}?{urlencode(pairs)}"

"""``opendatasoft``: events from one dataset of an Opendatasoft Explore v2.1 portal.

Most French open-data portals (Lille's included) run Opendatasoft. The field mapping to
our event model is YAML (``aggregator.mapping``), so an operator adds a dataset without
code. The default mapping fits the OpenAgenda mirror ``evenements-publics-openagenda``::

    - id: ods-lille
      type: opendatasoft
      base_url: https://opendata.lillemetropole.fr
      dataset: evenements-publics-openagenda
      where: location_city = "Lille"
      fields:                     # optional: overrides the default mapping key by key
        title: {translations: {fr: title_fr}}

Paging uses the ``records`` endpoint (``limit`` ≤ 100, ``offset``): it pages cheaply and
its documented ceiling (offset + limit ≤ 10 000) is also our cap, which a city's events
dataset filtered with ``where`` stays far below. The ``exports`` endpoint has no ceiling
but sends everything in one body with no way to stop early; it is the tool for bulk
copies, not for a poll that must stay bounded.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import AfterValidator, Field, model_validator

from aggregator.config.models import ConnectorConfig, check_source_url
from aggregator.connector import Connector
from aggregator.fetch import Fetcher
from aggregator.fetch_errors import FetchError
from aggregator.fetch_result import FetchResult, Validators
from aggregator.mapping import FieldSpec, MappingProblem, RecordMapping
from aggregator.model import ParseResult
from connectors.events.api import EventSourceType
from connectors.events.model import make_occurrence, recurrence_stamp
from connectors.events.openagenda import STATUS_CODES
from connectors.events.text import description_pair

__all__ = ["DEFAULT_FIELDS", "OpendatasoftConfig", "OpendatasoftConnector", "OpendatasoftError"]

#: Records endpoint limits (Explore v2.1): 100 per call, offset + limit ≤ 10 000.
MAX_PAGE = 100
MAX_WINDOW = 10_000

#: The mapping of the OpenAgenda mirror dataset; a source's ``fields`` override it by key.
DEFAULT_FIELDS: dict[str, str | FieldSpec] = {
    "uid": "uid",
    "title": FieldSpec(translations={"fr": "title_fr", "en": "title_en"}),
    "description": FieldSpec(translations={"fr": "longdescription_fr", "en": "longdescription_en"}),
    "summary": FieldSpec(translations={"fr": "description_fr", "en": "description_en"}),
    "timings": FieldSpec(path="timings", type="json"),
    "start": "firstdate_begin",
    "end": "firstdate_end",
    "status": FieldSpec(path="status", type="json"),
    "location_name": "location_name",
    "address": "location_address",
    "city": "location_city",
    "postal_code": "location_postalcode",
    "coordinates": FieldSpec(path="location_coordinates", type="json"),
    "keywords": FieldSpec(translations={"fr": "keywords_fr"}, type="json"),
    "conditions": FieldSpec(translations={"fr": "conditions_fr"}),
    "image": "image",
    "thumbnail": "thumbnail",
    "url": "canonicalurl",
    "updated_at": "updatedat",
    "age_min": FieldSpec(path="age_min", type="int"),
    "age_max": FieldSpec(path="age_max", type="int"),
}


class OpendatasoftError(FetchError):
    """The portal answered with an error document (bad ``where``, unknown dataset...)."""


class OpendatasoftConfig(ConnectorConfig):
    """Keys of an ``opendatasoft`` source."""

    base_url: str | None = None
    dataset: str | None = None
    #: Instead of the API: one saved records document (v2.1 ``results`` or v1 ``records``),
    #: e.g. an export on disk (``file:``) or a static mirror. No paging then.
    export_url: Annotated[str, AfterValidator(check_source_url)] | None = None
    where: str | None = None
    refine: dict[str, str] = Field(default_factory=dict)
    order_by: str | None = None
    page_size: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE)
    max_records: int = Field(MAX_WINDOW, ge=1, le=MAX_WINDOW)
    timezone: str | None = None
    channel: Literal["events", "agenda"] = "events"
    categories: list[str] = Field(default_factory=list)
    fields: dict[str, str | FieldSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _api_or_export(self) -> OpendatasoftConfig:
        if self.export_url is None and (self.base_url is None or self.dataset is None):
            raise ValueError("give base_url and dataset (the portal's API), or export_url")
        if self.export_url is not None and (self.base_url or self.dataset):
            raise ValueError("give either export_url or base_url and dataset, not both")
        return self

    def source_urls(self) -> dict[tuple[str | int, ...], str]:
        return {("export_url",): self.export_url} if self.export_url else {}


class OpendatasoftConnector(EventSourceType, Connector[OpendatasoftConfig]):
    """Occurrences of the events of one Opendatasoft dataset."""

    type_name = "opendatasoft"
    config_model = OpendatasoftConfig

    def records_url(self, offset: int) -> str:
        config = self.config
        params: list[tuple[str, str]] = [("limit", str(config.page_size)), ("offset", str(offset))]
        if config.where:
            params.append(("where", config.where))
        if config.order_by:
            params.append(("order_by", config.order_by))
        params += [("refine", f"{k}:{v}") for k, v in config.refine.items()]
        base = (config.base_url or "").rstrip("/")
        path = f"/api/explore/v2.1/catalog/datasets/{config.dataset}/records"
        return f"{base}{path}?{urlencode(params)}"

    async def fetch(self, fetcher: Fetcher, validators: Validators | None) -> FetchResult:
        config = self.config
        if config.export_url is not None:
            return await self.fetch_configured(fetcher, config.export_url, validators)
        began = time.monotonic()
        rows: list[Any] = []
        attempts = 0
        total: int | None = None
        offset = 0
        while offset < config.max_records:
            url = self.records_url(offset)
            result = await fetcher.fetch(
                url,
                timeout=config.timeout,
                max_bytes=config.max_bytes,
                headers=config.headers,
                retries=config.retries,
                redactor=self.context.redactor,
            )
            attempts += result.attempts
            page = _page(result.body, url)
            total = page.get("total_count", total)
            batch = page["results"]
            rows.extend(batch[: config.max_records - len(rows)])
            offset += len(batch)
            if len(batch) < config.page_size or (total is not None and offset >= total):
                break
        body = orjson.dumps({"total_count": total, "results": rows})
        return FetchResult(
            url=self.records_url(0),
            not_modified=False,
            body=body,
            content_type="application/json",
            validators=Validators(),
            status=200,
            attempts=attempts,
            elapsed=time.monotonic() - began,
            content_hash=hashlib.sha256(body).hexdigest(),
        )

    def parse(self, payload: bytes) -> ParseResult:
        document = orjson.loads(payload)
        if "results" in document:
            rows = document["results"]
        elif "records" in document:  # Explore v1 shape: the fields sit under "fields"
            rows = [r.get("fields", {}) for r in document["records"]]
        else:
            raise ValueError("no 'results' (v2.1) or 'records' (v1) in the document")
        mapping = RecordMapping({**DEFAULT_FIELDS, **self.config.fields})
        records: list[dict[str, Any]] = []
        issues: list[str] = []
        for number, row in enumerate(rows, start=1):
            try:
                mapped, problems = mapping.apply(row)
                records.extend(self._occurrences(mapped))
            except (MappingProblem, ValueError, TypeError, KeyError) as exc:
                issues.append(f"record {number} skipped: {exc}")
                continue
            issues.extend(f"record {number}: {p}" for p in problems)
        records.sort(key=lambda r: (r["start"], r["id"]))
        return ParseResult(
            data=records,
            record_count=len(records),
            issues=tuple(issues[:50]),
            issue_total=len(issues),
            stats={
                "rows": len(rows),
                "occurrences": len(records),
                "total": document.get("total_count"),
            },
        )

    def _occurrences(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        uid = row.get("uid")
        if uid in (None, ""):
            raise ValueError("no uid")
        zone = self.context.timezone
        timings = _json(row.get("timings")) or [{"begin": row.get("start"), "end": row.get("end")}]
        descriptions = {
            lang: pair
            for lang, raw in ((row.get("description") or row.get("summary")) or {}).items()
            if (pair := description_pair(raw))
        }
        status = _json(row.get("status"))
        status_id = status.get("id") if isinstance(status, Mapping) else status
        coords = _json(row.get("coordinates"))
        lat, lon = (
            (coords[0], coords[1])
            if isinstance(coords, list) and len(coords) == 2
            else (None, None)
        )
        keywords = {
            lang: [k.strip() for k in (v.split(";") if isinstance(v, str) else v) if k.strip()]
            for lang, v in (row.get("keywords") or {}).items()
        }
        out = []
        for timing in timings:
            if not timing.get("begin"):
                continue
            begin = datetime.fromisoformat(timing["begin"]).astimezone(zone)
            end = (
                datetime.fromisoformat(timing["end"]).astimezone(zone)
                if timing.get("end")
                else None
            )
            out.append(
                make_occurrence(
                    source=self.config.id,
                    uid=str(uid),
                    recurrence=recurrence_stamp(begin),
                    channel=self.config.channel,
                    title=row.get("title") or {},
                    description={k: v[1] for k, v in descriptions.items()},
                    description_html={k: v[0] for k, v in descriptions.items()},
                    start=begin,
                    end=end,
                    timezone=str(zone),
                    status=STATUS_CODES.get(int(status_id or 1), "scheduled"),
                    location={
                        "name": row.get("location_name"),
                        "address": row.get("address"),
                        "city": row.get("city"),
                        "postal_code": row.get("postal_code"),
                        "lat": lat,
                        "lon": lon,
                    },
                    categories=list(self.config.categories),
                    keywords=keywords,
                    price={"free": None, "text": row.get("conditions") or {}},
                    age={"min": row.get("age_min"), "max": row.get("age_max")},
                    image={"url": row["image"], "thumb_url": row.get("thumbnail"), "credits": None}
                    if row.get("image")
                    else None,
                    url=row.get("url"),
                    updated_at=datetime.fromisoformat(row["updated_at"])
                    if row.get("updated_at")
                    else None,
                )
            )
        return out


def _json(value: Any) -> Any:
    """ODS often stores structured fields as JSON-encoded strings (``timings``, ``status``)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _page(body: bytes, url: str) -> dict[str, Any]:
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OpendatasoftError("the portal answered with something not JSON", url=url) from None
    if (
        not isinstance(page, dict)
        or "error_code" in page
        or not isinstance(page.get("results"), list)
    ):
        message = page.get("message") if isinstance(page, dict) else None
        raise OpendatasoftError(f"portal error: {message or 'no results list'}", url=url)
    return page

"""The "places near a point" request both bike stations and car parks answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aggregator.api import schemas as api_schemas
from aggregator.api.communes import COMMUNE_PARAM, with_commune
from aggregator.api.fields import FIELDS
from aggregator.api.pagination import CursorCodec, page_of
from aggregator.api.params import QueryParams
from aggregator.api.results import ApiResult
from aggregator.api.routing import CURSOR_PARAM, Param, limit_param
from aggregator.communes import RecordCommunes, record_points

from .geo import PlaceIndex, feature_collection

if TYPE_CHECKING:
    from aggregator.runtime import Runtime


def near_query_params(
    *,
    items: str,
    source_kind: str,
    sources: Callable[[Runtime], Sequence[str]],
    default_radius: float,
    max_radius: float,
    max_limit: int,
) -> list[Param]:
    """The documented parameters :meth:`NearQuery.read` checks (``items``: "Stations"...;
    ``sources``: the function listing the ids ``source=`` accepts, the handler's too)."""
    return [
        Param("lat", "Latitude (WGS 84).", api_schemas.LATITUDE, required=True),
        Param("lon", "Longitude (WGS 84).", api_schemas.LONGITUDE, required=True),
        Param(
            "radius",
            f"Metres (1-{max_radius:.0f}).",
            api_schemas.number(1, max_radius, default=default_radius),
        ),
        limit_param(items, max_limit),
        CURSOR_PARAM,
        FIELDS,
        Param(
            "source",
            f"Only this {source_kind} source (a configured source id).",
            api_schemas.configured(sources),
        ),
        COMMUNE_PARAM,
    ]


@dataclass(frozen=True)
class NearQuery:
    """lat, lon, radius, limit and source of one request, checked; ``geojson``: answer as
    GeoJSON (:func:`aggregator.api.routing.wants_geojson`)."""

    lat: float
    lon: float
    radius_m: float
    limit: int
    geojson: bool
    sources: list[str]
    cursor: str | None = None
    #: What the cursors of this answer belong to (see ``pagination.query_scope``).
    scope: str = ""
    #: Only places in this commune (an INSEE code the communes know).
    commune: str | None = None

    @classmethod
    def read(
        cls,
        params: QueryParams,
        *,
        sources: list[str],
        kind: str,
        default_radius: float,
        max_radius: float,
        max_limit: int,
        geojson: bool,
        scope: str = "",
        commune: str | None = None,
    ) -> NearQuery:
        lat, lon = params.required_point()
        radius = params.number("radius", default_radius, minimum=1.0, maximum=max_radius)
        limit = params.integer("limit", 20, minimum=1, maximum=max_limit)
        wanted = params.member("source", sources, f"a configured {kind} source")
        if wanted is not None:
            sources = [wanted]
        cursor = params.string("cursor")
        return cls(
            lat, lon, radius or default_radius, limit, geojson, sources, cursor, scope, commune
        )

    def nearest(
        self,
        index: PlaceIndex,
        decorate: Callable[[dict[str, Any]], dict[str, Any]],
        communes: RecordCommunes,
    ) -> list[tuple[float, dict[str, Any]]]:
        """This index's places in range (and in the commune asked), each copied with its
        distance and commune, and ``decorate``d.

        All of them, not the first ``limit``: the answer pages through them and counts them.
        """
        found = []
        for away, place in index.nearest(
            self.lat, self.lon, radius_m=self.radius_m, limit=len(index)
        ):
            commune = communes.of(place["id"])
            if self.commune is not None and (commune is None or commune["code"] != self.commune):
                continue
            entry = with_commune(dict(place), commune)
            entry["distance_m"] = round(away, 1)
            found.append((away, decorate(entry)))
        return found

    @staticmethod
    def ordered(
        found: Sequence[tuple[float, dict[str, Any]]],
    ) -> list[tuple[float, dict[str, Any]]]:
        """The list's order: nearest first, then by id (what its pages and exports follow)."""
        return sorted(found, key=_rank)

    def answer(
        self,
        found: Sequence[tuple[float, dict[str, Any]]],
        codec: CursorCodec,
        meta: dict[str, Any] | None = None,
    ) -> ApiResult:
        """The page of every source's places nearest first, as JSON or GeoJSON, with
        ``meta.next_cursor`` and ``meta.total`` (the places in range)."""

        page = page_of(
            self.ordered(found),
            key=_rank,
            limit=self.limit,
            cursor=self.cursor,
            codec=codec,
            scope=self.scope,
        )
        places = [entry for _, entry in page.items]
        meta = {**(meta or {}), "total": page.total}
        paging: dict[str, Any] = {"paginated": True, "next_cursor": page.next_cursor}
        if self.geojson:
            return ApiResult(
                feature_collection(places),
                sources=self.sources,
                enveloped=False,
                media_type="application/geo+json",
                meta=meta,
                **paging,
            )
        return ApiResult(places, sources=self.sources, meta=meta, **paging)


def _rank(item: tuple[float, dict[str, Any]]) -> tuple[float, str]:
    return item[0], item[1]["id"]


def index_communes(
    runtime: Runtime, kind: str, source_id: str, index: PlaceIndex
) -> RecordCommunes:
    """The commune of each place of ``index`` (looked up once per index and commune set)."""
    return runtime.communes.of(f"{kind}:{source_id}", index, lambda: record_points(index.records))

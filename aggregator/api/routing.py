"""Routes declared once, with their documentation: the router installs them in aiohttp
and writes the OpenAPI 3.1 document from the same declarations, so the two cannot drift.

The conventions middleware also uses a route's declared parameters to reject unknown
query parameters (a typo like ``limt`` is a 400 that suggests ``limit``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from aggregator.api import schemas as api_schemas
from aggregator.api.params import MAX_PARAM_LENGTH, QueryParams

if TYPE_CHECKING:
    from aggregator.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[Any]]
#: A parameter schema the configuration decides (the served languages, the configured source
#: ids): computed from the runtime when the document is built, by the same function the handler
#: checks the parameter with, so the document says exactly what this deployment accepts. None
#: when no value is (no source of that kind is configured): the parameter is left out.
DeployedSchema = Callable[["Runtime"], Mapping[str, Any] | None]

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PATTERN = re.compile(r"\{(\w+):[^}]+\}")
#: A GeoJSON answer is its own operation, at its JSON twin's path plus this suffix: one
#: operation, one body shape, so every client generator reads it (a query parameter choosing
#: between two shapes is something none of them can type).
GEOJSON_SUFFIX = ".geojson"
GEOJSON_MEDIA_TYPE = "application/geo+json"
#: A list's CSV export is its own operation too, at the list's path plus this suffix
#: (aggregator.api.csv_export); ``format=csv`` on the list answers a 303 to it.
CSV_SUFFIX = ".csv"


def canonical_path(path: str) -> str:
    """``/v1/events/{event_id:.+}`` → ``/v1/events/{event_id}`` (what aiohttp and OpenAPI show)."""
    return _PATTERN.sub(r"{\1}", path)


META_REF = {"$ref": "#/components/schemas/Meta"}


@dataclass(frozen=True)
class Param:
    """A documented path or query parameter."""

    name: str
    description: str
    schema: Mapping[str, Any] | DeployedSchema = field(default_factory=lambda: {"type": "string"})
    location: Literal["query", "path"] = "query"
    required: bool = False

    def to_openapi(self, runtime: Runtime) -> dict[str, Any] | None:
        schema = self.schema(runtime) if callable(self.schema) else self.schema
        if schema is None:
            return None
        return {
            "name": self.name,
            "in": self.location,
            "description": self.description,
            "required": self.required or self.location == "path",
            "schema": dict(schema),
        }


def path_param(name: str, description: str) -> Param:
    return Param(name, description, location="path", required=True)


#: The ``cursor`` of every paged list (aggregator.api.pagination signs it for its filters).
CURSOR_PARAM = Param(
    "cursor",
    "The meta.next_cursor of the previous page (for the same filters).",
    api_schemas.CURSOR,
)


def limit_param(what: str, maximum: int, default: int = 20) -> Param:
    """The ``limit`` of a paged list of ``what`` ("Places"...)."""
    return Param(
        "limit",
        f"{what} per page (1-{maximum}, default {default}).",
        api_schemas.integer(1, maximum, default=default),
    )


#: Accepted on every route, so a client interceptor that adds them to every call breaks
#: nothing: ``lang`` (checked everywhere against the served languages, used where a text is
#: translated) and ``_``, the cache-busting value some HTTP clients append (ignored).
UNIVERSAL_PARAMS = (
    Param(
        "lang",
        "Response language; overrides Accept-Language (one of the configured languages). "
        "Accepted on every route; only translated texts depend on it.",
        api_schemas.language,
    ),
    Param(
        "_",
        "Ignored: a cache-busting value some HTTP clients add to every call.",
        {"type": "string", "maxLength": MAX_PARAM_LENGTH},
    ),
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: tuple[str, ...]
    params: tuple[Param, ...]
    #: JSON schema of ``data`` (enveloped) or of the whole body (not enveloped).
    response: Mapping[str, Any] | None
    media_type: str
    enveloped: bool
    errors: tuple[int, ...]
    description: str
    #: Needs the admin bearer token.
    admin: bool = False
    #: JSON schema of the request body, for the routes that take one (POST, PATCH).
    body: Mapping[str, Any] | None = None
    #: The status of success: 201 for a creation, 204 for an answer with no body.
    success: int = 200
    #: The security scheme a non-admin route needs (e.g. ``subscriptionSecret``).
    security: str | None = None
    #: JSON schema of the optional ``references`` member of the envelope (``include=``).
    references: Mapping[str, Any] | None = None

    @property
    def public_json(self) -> bool:
        """A public JSON answer (not admin, not a stream, not a page): it may be cached."""
        return not self.admin and self.method == "GET" and "json" in self.media_type

    @property
    def query_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.location == "query")


class ApiRouter:
    """Collects route declarations and component schemas."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self.schemas: dict[str, Any] = {}

    def get(
        self,
        path: str,
        handler: Handler,
        *,
        geojson: Mapping[str, Any] | None = None,
        csv: Handler | None = None,
        **declaration: Any,
    ) -> None:
        """Declare a GET route (HEAD is served by it too).

        With ``geojson`` (the schema of its FeatureCollection), the route also answers as
        GeoJSON at ``path + GEOJSON_SUFFIX``, a second operation with the same parameters; the
        handler tells the two apart with :func:`wants_geojson`. ``?format=geojson`` on the JSON
        route still answers the GeoJSON, for the clients written before the split, but the
        document lists only ``format=json`` there: one operation, one body shape.

        With ``csv`` (the handler of its export), the list also answers as CSV at
        ``path + CSV_SUFFIX``, with the same parameters but the paging ones
        (``csv_export.NOT_IN_EXPORT``); ``?format=csv`` on the JSON route answers a 303 to it.
        """
        if geojson is None and csv is None:
            self.add("GET", path, handler, **declaration)
            return
        from aggregator.api.csv_export import CSV_MEDIA_TYPE, NOT_IN_EXPORT, see_csv

        params = [p for p in declaration.pop("params", ()) if p.name != "format"]
        summary = declaration.pop("summary")
        response = declaration.pop("response")
        twin = canonical_path(path)
        description = declaration.pop("description", "")
        if geojson is not None:
            # Declared first: aiohttp tries routes in order, and /v1/lines/{line_id} would
            # also match /v1/lines/x.geojson.
            self.add(
                "GET",
                path + GEOJSON_SUFFIX,
                handler,
                summary=f"{summary}, as GeoJSON",
                # Sync tokens are for the JSON list an app keeps offline, not for its map.
                params=[p for p in params if p.name != "sync"],
                response=geojson,
                media_type=GEOJSON_MEDIA_TYPE,
                enveloped=False,
                **{
                    **declaration,
                    "description": f"What GET {twin} answers, as an RFC 7946 FeatureCollection; "
                    "meta is one more member of it.",
                },
            )
        choices = ["json"]
        text = "json (the default)."
        if csv is not None:
            self.add(
                "GET",
                path + CSV_SUFFIX,
                csv,
                summary=f"{summary}, as a CSV export",
                params=[p for p in params if p.name not in NOT_IN_EXPORT],
                response={"type": "string"},
                media_type=CSV_MEDIA_TYPE,
                enveloped=False,
                **{
                    **declaration,
                    "description": f"What GET {twin} lists, with its filters, as one RFC 4180 "
                    "CSV file (UTF-8, a header row): the whole filtered set in the list's order, "
                    "no paging; over the bound, an export_too_large problem. Columns and the "
                    "licence columns: docs/OPEN-DATA.md.",
                },
            )
            choices.append("csv")
            formats = (*choices, "geojson") if geojson is not None else tuple(choices)
            handler = see_csv(handler, self, formats)
            text = f"json (the default), or csv: a 303 to {twin}{CSV_SUFFIX} with the same filters."
            declaration["errors"] = [*declaration.get("errors", (400,)), 303]
        if geojson is not None:
            text += (
                f" format=geojson is still accepted from older clients and answers what "
                f"{twin}{GEOJSON_SUFFIX} does: use that route."
            )
        legacy = Param("format", text, {"type": "string", "enum": choices, "default": "json"})
        self.add(
            "GET",
            path,
            handler,
            summary=summary,
            params=[*params, legacy],
            response=response,
            description=description,
            **declaration,
        )

    def post(self, path: str, handler: Handler, **declaration: Any) -> None:
        """Declare a POST route (the admin API, subscriptions)."""
        self.add("POST", path, handler, **declaration)

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        summary: str,
        tags: Sequence[str] = (),
        params: Sequence[Param] = (),
        response: Mapping[str, Any] | None = None,
        media_type: str = "application/json",
        enveloped: bool = True,
        errors: Sequence[int] = (400,),
        description: str = "",
        admin: bool = False,
        body: Mapping[str, Any] | None = None,
        success: int = 200,
        security: str | None = None,
        references: Mapping[str, Any] | None = None,
    ) -> None:
        key = (method, canonical_path(path))
        if key in self._routes:
            raise ValueError(f"route {method} {path} is declared twice")
        declared = {p.name for p in params if p.location == "query"}
        params = [*params, *(p for p in UNIVERSAL_PARAMS if p.name not in declared)]
        if 400 not in errors:  # every route has query parameters now: a bad one is a 400
            errors = (400, *errors)
        self._routes[key] = Route(
            method,
            path,
            handler,
            summary,
            tuple(tags),
            tuple(params),
            response,
            media_type,
            enveloped,
            tuple(errors),
            description,
            admin,
            body,
            success,
            security,
            references if enveloped else None,
        )

    def add_schema(self, name: str, schema: Mapping[str, Any]) -> dict[str, str]:
        """Register a component schema; returns a ``$ref`` to it."""
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"schema {name} is declared twice, differently")
        self.schemas[name] = dict(schema)
        return {"$ref": f"#/components/schemas/{name}"}

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def lookup(self, method: str, path: str) -> Route | None:
        """The declaration of a matched route (HEAD is served by the GET declaration)."""
        return self._routes.get(("GET" if method == "HEAD" else method, path))

    def install(self, app: web.Application) -> None:
        for route in self._routes.values():
            if route.method == "GET":
                app.router.add_get(route.path, route.handler)  # and HEAD
            else:
                app.router.add_route(route.method, route.path, route.handler)

    def openapi(
        self, runtime: Runtime, *, title: str, version: str, description: str
    ) -> dict[str, Any]:
        """The document for ``runtime``'s configuration (see :data:`DeployedSchema`)."""
        paths: dict[str, dict[str, Any]] = {}
        for route in sorted(self._routes.values(), key=lambda r: r.path):
            operations = paths.setdefault(canonical_path(route.path), {})
            operations[route.method.lower()] = self._operation(route, runtime)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "paths": paths,
            "components": {
                "schemas": dict(sorted(self.schemas.items())),
                "securitySchemes": {
                    "adminToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "server.admin_token, for the admin endpoints only",
                    },
                    "subscriptionSecret": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "the secret POST /v1/subscriptions answered, for that "
                        "subscription only",
                    },
                },
            },
        }

    def _operation(self, route: Route, runtime: Runtime) -> dict[str, Any]:
        responses: dict[str, Any]
        if route.success == 204:
            responses = {"204": {"description": "Done; no content"}}
        else:
            if route.response is None:
                raise ValueError(f"{route.method} {route.path} declares no response schema")
            body_schema: Any = dict(route.response)
            if route.enveloped:
                properties = {"data": body_schema, "meta": META_REF}
                if route.references is not None:  # only when asked for: not required
                    properties["references"] = dict(route.references)
                body_schema = {
                    "type": "object",
                    "required": ["data", "meta"],
                    "properties": properties,
                }
            content = {route.media_type: {"schema": body_schema}}
            success = str(route.success)
            responses = {
                success: {"description": _STATUS_TEXT.get(route.success, "OK"), "content": content}
            }
        if route.method == "GET" and (route.enveloped or route.path.endswith(CSV_SUFFIX)):
            responses["304"] = {"description": "Not modified (the ETag still matches)"}
        for status in route.errors:
            if status == 303:  # a representation served by another operation (no body here)
                responses["303"] = {
                    "description": "See other: the representation asked for is at Location",
                    "headers": {
                        "Location": {"schema": {"type": "string", "format": "uri-reference"}}
                    },
                }
                continue
            responses[str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {"application/problem+json": {"schema": PROBLEM_REF}},
            }
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "parameters": [
                p for p in (param.to_openapi(runtime) for param in route.params) if p is not None
            ],
            "responses": responses,
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": dict(route.body)}},
            }
        if route.tags:
            operation["tags"] = list(route.tags)
        if route.admin or route.security:
            operation["security"] = [{route.security or "adminToken": []}]
        if route.description:
            operation["description"] = route.description
        return operation


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    400: "Invalid parameter",
    401: "Missing or wrong admin token",
    403: "Admin API disabled",
    404: "Not found",
    410: "Gone (a sync token the server no longer remembers: start again)",
    429: "Too many requests",
    503: "Not ready",
}


def _operation_id(route: Route) -> str:
    path = canonical_path(route.path)
    words = re.findall(r"[A-Za-z0-9]+", path)
    # /ogc/ (a landing page OGC clients resolve against) is not /ogc: ids must differ.
    index = "_index" if path.endswith("/") and len(path) > 1 else ""
    return route.method.lower() + "_" + "_".join(words or ["root"]) + index


def wants_geojson(request: web.Request) -> bool:
    """Whether to answer as GeoJSON: the ``.geojson`` route, or ``?format=geojson`` on its
    JSON twin (see :meth:`ApiRouter.get`)."""
    resource = request.match_info.route.resource
    if resource is not None and resource.canonical.endswith(GEOJSON_SUFFIX):
        return True
    return QueryParams(request.query).choice("format", ("json", "geojson"), "json") == "geojson"

"""``/v1/openapi.json``: the document built from the route declarations for this deployment,
compressed and tagged once, answered with a 304 when the client already holds it.

Parameters such as ``lang``, ``feed`` or ``source`` list what the configuration serves, so the
document is rebuilt when the configured sources change (a reload); between reloads every request
gets the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

import orjson
from aiohttp import web

from aggregator import __version__
from aggregator.api.rendering import Rendered, accepts_gzip
from aggregator.api.routing import ApiRouter
from aggregator.runtime import Runtime

DESCRIPTION = (
    "Beffroi serves a city's transit, events and open data as one JSON API. Every JSON "
    "answer is an envelope {data, meta}; errors are RFC 9457 problem documents; every GET "
    "carries a weak ETag and honours If-None-Match."
)
#: Clients and shared caches may keep it this long; the ETag makes a later check cheap.
MAX_AGE_S = 300

DeploymentKey = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def openapi_bytes(router: ApiRouter, runtime: Runtime) -> bytes:
    """The OpenAPI 3.1 document of ``router``'s routes for ``runtime``'s configuration."""
    document = router.openapi(
        runtime, title="Beffroi API", version=__version__, description=DESCRIPTION
    )
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


def deployment_key(runtime: Runtime) -> DeploymentKey:
    """What the document's parameter schemas depend on: languages, source ids and types."""
    sources = tuple((source_id, s.source_type) for source_id, s in runtime.statuses.items())
    return runtime.languages, sources


@dataclass(frozen=True, slots=True)
class _Answers:
    key: DeploymentKey
    plain: Rendered
    compressed: Rendered


class OpenApiDocument:
    """The served document, built and compressed once per configuration."""

    def __init__(self, router: ApiRouter) -> None:
        self._router = router
        self._answers: _Answers | None = None

    def body(self, runtime: Runtime) -> bytes:
        """The document's JSON bytes for ``runtime``'s current configuration."""
        return self._current(runtime).plain.body

    def respond(self, request: web.Request, runtime: Runtime) -> web.Response:
        answers = self._current(runtime)
        rendered = answers.compressed if accepts_gzip(request) else answers.plain
        return rendered.respond(request.headers.get("If-None-Match"))

    def _current(self, runtime: Runtime) -> _Answers:
        key = deployment_key(runtime)
        if self._answers is None or self._answers.key != key:
            self._answers = self._build(key, openapi_bytes(self._router, runtime))
        return self._answers

    @staticmethod
    def _build(key: DeploymentKey, body: bytes) -> _Answers:
        etag = hashlib.sha256(body).hexdigest()[:24]
        headers = {
            "Content-Type": "application/json",
            "Cache-Control": f"public, max-age={MAX_AGE_S}",
            "Vary": "Accept-Encoding",
            # Weak, like every other answer: the gzip and plain bytes are one representation.
            "ETag": f'W/"{etag}"',
        }
        compressed = gzip.compress(body, compresslevel=9, mtime=0)
        return _Answers(
            key,
            Rendered(200, headers, body, etag, MAX_AGE_S),
            Rendered(200, {**headers, "Content-Encoding": "gzip"}, compressed, etag, MAX_AGE_S),
        )

"""Sync tokens: what changed in a list since a client last synced, by content, paged.

A phone keeping a list offline asks once for everything, then only for what changed::

    GET /v1/events?sync=start[&filters]   -> data.changed: every matching record, paged;
                                             the last page's meta.sync_token is the token
    GET /v1/events?sync=<token>[&filters] -> data.changed: records new or changed since,
                                             data.removed: tombstones; last page: new token

Changes are decided by content: each list publishes its current ``record id -> content
hash`` set to a change log kept in the store (:mod:`aggregator.store.changelog`), which
gives every change a sequence number; a token is a signed (epoch, sequence). Republishing
identical content changes nothing, so a re-poll with nothing new yields an empty delta. With
the Redis store the log is shared by every process and survives restarts; with the memory
store it lives as long as the process (a configuration reload keeps it).

Filters go with a sync: a record that changed but does not match them any more is in
``removed`` with reason ``filtered_out`` (the client may never have had it: deleting an
unknown id is a no-op). A token is bound to its filters (another query -> 400). A token
older than the log remembers (tombstones kept ``RETENTION_S`` and at most
``MAX_TOMBSTONES`` per list, or a log started anew) -> 410 ``sync_expired``: start again
with ``sync=start``.

Plugging a list in (a few lines in its route)::

    from aggregator.api import sync

    collection = sync.SyncCollection(
        name="news",                        # the change log's key in the store
        version=index,                      # an object whose identity is one state of the list
        generation=index.generation,        # source id -> snapshot version it was built from
        hashes=index.content_hashes,        # () -> {record id: content hash}
    )
    page = await sync.sync_page(
        runtime, params, collection,
        scope="news|" + filters_key,        # what the token is bound to: the filters
        matching=lambda: ids_matching(filters),   # () -> set of ids the filters select
        limit=limit,
    )
    data = {"changed": [render(by_id[i]) for i in page.changed], "removed": page.removed}
    return ApiResult(data, paginated=True, next_cursor=page.next_cursor,
                     meta={"sync_token": page.sync_token}, ...)

and add ``*sync.PARAMS`` to the route's parameters and :func:`answer_schema` to its answer.

A list made of one index per source (news feeds, places sources) gets its collection from
:func:`union` instead: the per-source indexes, each with its records' :func:`content_hashes`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from aggregator.api import schemas as api_schemas
from aggregator.api.params import QueryParams
from aggregator.api.problems import ApiError, BadParameter
from aggregator.api.results import ApiResult
from aggregator.api.routing import Param
from aggregator.store import Store

if TYPE_CHECKING:
    from aggregator.runtime import Runtime

#: The ``sync`` value that starts a sync (every matching record, no tombstones).
START = "start"
REMOVED_REASONS = ("deleted", "filtered_out")


@dataclass(frozen=True)
class SyncCollection:
    """One state of a list, as the sync module needs it (see the module docstring)."""

    name: str
    version: object
    generation: Mapping[str, int]
    hashes: Callable[[], Mapping[str, str]]


@dataclass
class SyncPage:
    """One page of a sync: ids to send in full, tombstones, and how to go on."""

    changed: list[str] = field(default_factory=list)
    removed: list[dict[str, str]] = field(default_factory=list)
    #: Set on every page but the last; the last carries ``sync_token`` instead.
    next_cursor: str | None = None
    sync_token: str | None = None


class SyncExpired(ApiError):
    def __init__(self) -> None:
        super().__init__(410, "Sync expired", "sync_expired", kind="sync-expired")


class SyncNotReady(ApiError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "Not ready",
            "sync_not_ready",
            kind="sync-not-ready",
            headers={"Retry-After": "1"},
        )


# -- publishing ------------------------------------------------------------------------

#: Per store, per collection: the version last published from this process, and a lock so
#: that concurrent first requests hash and publish it once.
_published: weakref.WeakKeyDictionary[Store, dict[str, tuple[weakref.ref[Any], asyncio.Lock]]]
_published = weakref.WeakKeyDictionary()


async def publish(store: Store, collection: SyncCollection) -> None:
    """Record ``collection`` in the store's change log unless this version already is."""
    per_store = _published.setdefault(store, {})
    entry = per_store.get(collection.name)
    if entry is None:
        entry = per_store[collection.name] = (weakref.ref(_Nothing), asyncio.Lock())
    if entry[0]() is collection.version:
        return
    async with entry[1]:
        if per_store[collection.name][0]() is collection.version:
            return
        hashes = dict(await asyncio.to_thread(collection.hashes))
        await store.publish_changes(
            collection.name, dict(collection.generation), hashes, time.time()
        )
        per_store[collection.name] = (weakref.ref(collection.version), entry[1])


class _Nothing:
    """A placeholder no collection version is."""


# -- lists made of one index per source -------------------------------------------------


def content_hashes(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Record id -> a digest of the record's content (its JSON with sorted keys).

    What a list publishes to its change log: a record whose digest is the same is unchanged,
    whatever the bytes or the poll it came from.
    """
    return {
        record["id"]: hashlib.blake2b(
            orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=12
        ).hexdigest()
        for record in records
    }


#: A configured source with no snapshot in this process: it takes part in a union's
#: generation with this version, so a process still loading it cannot publish the list
#: without it over the log of a process that has it (that would tombstone all its records).
NOT_LOADED = -1


class SourceUnion:
    """One state of a list made of one index per source: its identity is that state.

    The same indexes of the same configured sources give the same object (see :func:`union`),
    so :func:`publish` hashes and publishes a state once, as it does for a combined index.
    """

    def __init__(
        self,
        parts: Mapping[str, Any],
        generation: Mapping[str, int],
        hashes_of: Callable[[Any], Mapping[str, str]],
    ) -> None:
        #: Source id -> its index (only the sources with a snapshot here).
        self.parts = dict(parts)
        #: Source id -> snapshot version, NOT_LOADED for a configured source not loaded.
        self.generation = dict(generation)
        self._hashes_of = hashes_of
        self._hashes: dict[str, str] | None = None

    def hashes(self) -> dict[str, str]:
        if self._hashes is None:
            merged: dict[str, str] = {}
            for index in self.parts.values():
                merged.update(self._hashes_of(index))
            self._hashes = merged
        return self._hashes

    def same_state(self, parts: Mapping[str, Any], generation: Mapping[str, int]) -> bool:
        # The configured sources count too: a source dropped from the configuration changes
        # the list (its records become tombstones) though no loaded index changed.
        return (
            self.generation == generation
            and self.parts.keys() == parts.keys()
            and all(self.parts[s] is index for s, index in parts.items())
        )


def loaded(
    runtime: Runtime, sources: Iterable[str], index_name: str, build: Callable[..., Any]
) -> dict[str, tuple[int, Any]]:
    """Source id -> (snapshot version, index ``index_name`` built by ``build``) of the
    ``sources`` with a snapshot here: what :func:`union` and :func:`check_loaded` take."""
    found = {}
    for source_id in sources:
        snapshot = runtime.live.snapshot(source_id)
        index = runtime.live.index(source_id, index_name, build)
        if snapshot is not None and index is not None:
            found[source_id] = (snapshot.version, index)
    return found


def check_loaded(runtime: Runtime, configured: Iterable[str], loaded: Mapping[str, Any]) -> None:
    """Raise :class:`SyncNotReady` while this process lacks a configured source that has data
    elsewhere (its status knows a snapshot version): answering without it would skip its
    records, or tombstone them as filtered out. A source never loaded anywhere is no reason
    to wait: the list is what the others hold."""
    for source_id in configured:
        status = runtime.statuses.get(source_id)
        if source_id not in loaded and status is not None and status.version:
            raise SyncNotReady()


#: Per owner (a process's LiveData), per list: the union last built.
_unions: weakref.WeakKeyDictionary[object, dict[str, SourceUnion]] = weakref.WeakKeyDictionary()


def union(
    owner: object,
    name: str,
    configured: Iterable[str],
    loaded: Mapping[str, tuple[int, Any]],
    hashes_of: Callable[[Any], Mapping[str, str]],
) -> tuple[SyncCollection, SourceUnion]:
    """The collection ``name`` of the per-source indexes ``loaded`` (source id -> (snapshot
    version, index)) of the ``configured`` sources, and the union (to find a record's index).
    """
    parts = {source_id: index for source_id, (_version, index) in loaded.items()}
    generation = {source_id: NOT_LOADED for source_id in configured}
    generation.update({source_id: version for source_id, (version, _) in loaded.items()})
    per_owner = _unions.setdefault(owner, {})
    current = per_owner.get(name)
    if current is None or not current.same_state(parts, generation):
        current = per_owner[name] = SourceUnion(parts, generation, hashes_of)
    collection = SyncCollection(
        name=name, version=current, generation=current.generation, hashes=current.hashes
    )
    return collection, current


# -- reading ---------------------------------------------------------------------------


def _decode(runtime: Runtime, scope: str, value: str, param: str) -> Any:
    try:
        return runtime.cursors.decode(scope, value)
    except BadParameter as error:
        if param != "sync":
            raise
        if error.extra["errors"][0]["code"] == "cursor_other_query":
            raise BadParameter("sync", "sync_other_query") from None
        raise BadParameter("sync", "sync_token_unknown") from None


async def sync_page(
    runtime: Runtime,
    params: QueryParams,
    collection: SyncCollection,
    *,
    scope: str,
    matching: Callable[[], set[str]],
    limit: int,
) -> SyncPage:
    """The page of changes the request's ``sync`` (and ``cursor``) ask for."""
    token = params.string("sync")
    assert token is not None, "sync_page is for requests with a sync parameter"
    token_scope = f"sync|{scope}"
    epoch: str | None = None
    since = 0
    if token != START:
        position = _decode(runtime, token_scope, token, "sync")
        if not (isinstance(position, list) and len(position) == 2):
            raise BadParameter("sync", "sync_token_unknown")
        epoch, since = str(position[0]), int(position[1])
    page_scope = f"sync-page|{scope}|{token}"
    after = since
    cursor = params.string("cursor")
    if cursor is not None:
        after = int(_decode(runtime, page_scope, cursor, "cursor"))
    try:
        await publish(runtime.store, collection)
        view = await runtime.store.read_changes(collection.name, after)
    except (RedisError, OSError):
        raise SyncNotReady() from None
    if token != START and (
        view.epoch != epoch or since < view.floor or since > view.head or view.epoch is None
    ):
        raise SyncExpired()
    entries: list[tuple[int, str, str | None]] = [
        *view.changed,
        *((s, i, None) for s, i in view.removed),
    ]
    entries.sort()
    selected = matching()
    local = collection.hashes()
    out = SyncPage()
    served = 0
    for seq, rid, digest in entries:
        if served == limit:
            out.next_cursor = runtime.cursors.encode(page_scope, after)
            return out
        after = seq
        if digest is None:
            if since:
                out.removed.append({"id": rid, "reason": "deleted"})
                served += 1
        elif rid in selected:
            if local.get(rid) != digest:
                raise SyncNotReady()  # another process published newer data than ours
            out.changed.append(rid)
            served += 1
        elif since:
            out.removed.append({"id": rid, "reason": "filtered_out"})
            served += 1
    out.sync_token = runtime.cursors.encode(token_scope, [view.epoch, view.head])
    return out


# -- description -----------------------------------------------------------------------

PARAMS = [
    Param(
        "sync",
        "Instead of a page of the list: 'start' for every matching record, then the "
        "meta.sync_token of the last page of the previous sync for what changed since "
        "(data.changed, data.removed); pages with cursor and limit like the list.",
        {**api_schemas.CURSOR, "description": "'start' or a meta.sync_token"},
    ),
]

#: ``updated_since``, which sync tokens replaced: declared so that its refusal can say so.
UPDATED_SINCE_REFUSED = Param(
    "updated_since",
    "Replaced by sync: any value is refused (400) with a pointer to sync.",
    api_schemas.TEXT,
)

REMOVED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A tombstone: deleted (gone from the sources) or filtered_out (changed "
    "and no longer matching the sync's filters). Delete the id if you have it.",
    "properties": {
        "id": {"type": "string"},
        "reason": {"type": "string", "enum": list(REMOVED_REASONS)},
    },
    "required": ["id", "reason"],
}


def page_answer(
    page: SyncPage,
    changed: list[dict[str, Any]],
    *,
    sources: Iterable[str],
    language: str,
    meta: Mapping[str, Any] | None = None,
    content_language: bool = True,
) -> ApiResult:
    """The answer to one page of a sync: ``changed`` (the page's items, in full), its
    tombstones, and how to go on (``next_cursor``, or ``meta.sync_token`` on the last page);
    :func:`answer_schema` documents it."""
    return ApiResult(
        {"changed": changed, "removed": page.removed},
        sources=list(sources),
        language=language,
        paginated=True,
        next_cursor=page.next_cursor,
        meta={**(meta or {}), "sync_token": page.sync_token},
        content_language=content_language,
    )


def answer_schema(item_ref: Mapping[str, Any], removed_ref: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` of a sync answer whose changed records are ``item_ref``."""
    return {
        "type": "object",
        "description": "What changed since the sync token (everything, for sync=start). "
        "Apply pages in order; the last page's meta.sync_token is the next sync's token.",
        "properties": {
            "changed": {"type": "array", "items": dict(item_ref)},
            "removed": {"type": "array", "items": dict(removed_ref)},
        },
        "required": ["changed", "removed"],
    }

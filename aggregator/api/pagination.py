"""Opaque cursor pagination.

A cursor is the sort key of the last item served plus the query it belongs to, signed
with HMAC so a client can neither forge a position nor replay a cursor on another query.
Keyset (not offset) positions keep pages consistent when the data changes in between.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from aggregator.api.problems import BadParameter

T = TypeVar("T")
_SIGNATURE_BYTES = 12


class CursorCodec:
    """Signs and verifies cursors; give every process of a deployment the same secret."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or secrets.token_urlsafe(32)).encode()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    @staticmethod
    def _scope(scope: str) -> str:
        # A digest keeps cursors short whatever the query; only equality matters.
        return hashlib.blake2b(scope.encode(), digest_size=6).hexdigest()

    def encode(self, scope: str, position: Any) -> str:
        body = orjson.dumps({"s": self._scope(scope), "p": position})
        return base64.urlsafe_b64encode(self._sign(body) + body).rstrip(b"=").decode()

    def decode(self, scope: str, cursor: str) -> Any:
        """The position in ``cursor``; a 400 if it was altered or belongs to another query."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (ValueError, TypeError):
            raise BadParameter("cursor", "cursor_unknown") from None
        signature, body = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if len(signature) != _SIGNATURE_BYTES or not hmac.compare_digest(
            signature, self._sign(body)
        ):
            raise BadParameter("cursor", "cursor_unknown")
        payload = orjson.loads(body)
        if payload.get("s") != self._scope(scope):
            raise BadParameter("cursor", "cursor_other_query")
        return payload.get("p")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def paginate(
    items: Sequence[T],
    *,
    key: Callable[[T], Any],
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
    scope: str,
) -> Page[T]:
    """The page after ``cursor`` of ``items``, which must be sorted by ``key``."""

    def position(item: T) -> Any:
        # Tuples come back from JSON as lists; compare like with like.
        value = key(item)
        return list(value) if isinstance(value, tuple) else value

    start = 0
    if cursor is not None:
        after = codec.decode(scope, cursor)
        try:
            start = bisect.bisect_right(items, after, key=position)
        except TypeError:
            raise BadParameter("cursor", "cursor_unknown") from None
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    next_cursor = codec.encode(scope, position(chunk[-1])) if more and chunk else None
    return Page(chunk, next_cursor)


#: The largest page any list serves: one bound for every ``limit=`` of the API, so an app
#: can use one page size everywhere. A larger ``limit`` is a 400 naming this maximum.
MAX_LIMIT = 100
#: Query parameters that do not change which items a list holds, hence not its cursors' scope:
#: the page position and size, the language of texts, the cache-buster, the field selection.
_OUTSIDE_SCOPE = frozenset({"cursor", "limit", "lang", "_", "fields"})


def query_scope(path: str, query: Mapping[str, str]) -> str:
    """The scope of a list's cursors: its path and every filter of the request, so a cursor
    given to the same list with other filters is refused (it would point nowhere)."""
    kept = sorted((k, v) for k, v in query.items() if k not in _OUTSIDE_SCOPE)
    return path + "?" + orjson.dumps(kept).decode()


@dataclass(frozen=True)
class ListPage(Generic[T]):
    """One page of a list, with what its ``meta`` says about the rest."""

    items: list[T]
    next_cursor: str | None
    total: int


def page_of(
    items: Sequence[T],
    *,
    key: Callable[[T], Any],
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
    scope: str,
) -> ListPage[T]:
    """:func:`paginate` plus the count of the whole list (cheap: the list is in hand)."""
    page = paginate(items, key=key, limit=limit, cursor=cursor, codec=codec, scope=scope)
    return ListPage(page.items, page.next_cursor, len(items))

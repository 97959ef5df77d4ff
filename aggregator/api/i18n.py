"""Language negotiation: ``?lang=`` first, then ``Accept-Language``, then the default.

Only labels are translated; codes and field names never are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from aggregator.api.params import MAX_PARAM_LENGTH
from aggregator.api.problems import BadParameter

# Two letters (fr, en, fr-BE): "min"/"max" of an age range must not look like languages.
_LANGUAGE_TAG = re.compile(r"^[a-z]{2}([-_][A-Za-z]{2,4})?$")


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].split("_", 1)[0].lower()


@functools.lru_cache(maxsize=16)
def language_pattern(supported: tuple[str, ...]) -> str:
    """The ``?lang=`` values served: a tag whose primary subtag, in any case, is one of
    ``supported``'s, then subtags of 1-8 letters or digits (fr, FR, fr-BE, zh_Hant_TW).

    The handlers check ``?lang=`` with this pattern and the OpenAPI document carries the very
    same string (ECMA-262 and Python read it alike), so the two cannot disagree.
    """
    primaries = dict.fromkeys(_primary(tag) for tag in supported)
    spelled = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in p) for p in primaries)
    return f"^({spelled})([-_][A-Za-z0-9]{{1,8}})*$"


@functools.lru_cache(maxsize=16)
def _served_language(supported: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(language_pattern(supported))


def parse_accept_language(header: str) -> list[str]:
    """Language tags from an Accept-Language header, best first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for piece in pieces[1:]:
            key, _, value = piece.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_language(request: web.Request, supported: Sequence[str]) -> str:
    """The response language among ``supported`` (whose first entry is the default)."""
    by_primary = {_primary(tag): tag for tag in reversed(supported)}
    asked = request.query.get("lang")
    if asked is not None:
        if asked in supported:
            return asked
        if len(asked) > MAX_PARAM_LENGTH:
            raise BadParameter("lang", "too_long", maximum=MAX_PARAM_LENGTH)
        if _served_language(tuple(supported)).fullmatch(asked):
            return by_primary[_primary(asked)]
        raise BadParameter("lang", "not_one_of", value=repr(asked), choices=", ".join(supported))
    return language_from_header(request.headers.get("Accept-Language", ""), supported)


def language_from_header(header: str, supported: Sequence[str]) -> str:
    """The language ``Accept-Language: header`` negotiates among ``supported`` (first: the
    default); whatever the header says, the answer is one of ``supported``."""
    by_primary = {_primary(tag): tag for tag in reversed(supported)}
    for tag in parse_accept_language(header):
        if tag in supported:
            return tag
        if _primary(tag) in by_primary:
            return by_primary[_primary(tag)]
    return supported[0]


@functools.lru_cache(maxsize=1024)
def _is_language_tag(key: str) -> bool:
    return _LANGUAGE_TAG.match(key) is not None


def localize(value: Any, language: str, fallbacks: Sequence[str]) -> Any:
    """Pick one text from a ``{lang: text}`` mapping; other values pass through.

    Only a mapping whose keys are all language tags counts as translations, so nested
    objects (an address, a geometry) are left alone.
    """
    return localize_tagged(value, language, fallbacks)[0]


def localize_tagged(value: Any, language: str, fallbacks: Sequence[str]) -> tuple[Any, str | None]:
    """:func:`localize`, and the language of the text picked (None: not a translated text).

    A text that exists only in its source's language is answered in that language whatever
    was asked: the tag says which, so a client can tell a French title asked in English.
    """
    if not isinstance(value, Mapping):
        return value, None
    if not value:
        return None, None  # translations with no text at all: say "none", not an empty object
    for k in value:
        if not (isinstance(k, str) and _is_language_tag(k)):
            return value, None
    if language in value:
        return value[language], language
    for tag in fallbacks:
        if tag in value:
            return value[tag], tag
    tag = next(iter(value))
    return value[tag], tag


def localize_record(
    record: Mapping[str, Any],
    language: str,
    fallbacks: Sequence[str],
    picked: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A record with every translated field reduced to the negotiated language; when
    ``picked`` is given, it receives each translated field's name and the language of its
    text."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out[key], tag = localize_tagged(value, language, fallbacks)
            if tag is not None and picked is not None:
                picked[key] = tag
        else:
            out[key] = value
    return out


def all_in(language: str, records: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every text of ``records`` is in ``language``, as each record's
    ``text_languages`` says (fr-FR counts as fr): then, and only then, an answer's
    ``Content-Language`` may claim ``language``."""
    primary = _primary(language)
    return all(
        _primary(tag) == primary
        for record in records
        for tag in (record.get("text_languages") or {}).values()
    )

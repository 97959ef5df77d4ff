"""Keep secrets (API keys, tokens, passwords) out of error messages, logs and status pages.

Operators put keys in URLs and headers through ``${VAR}`` in the YAML; anything we show about a
source (its last error, a log line) goes through a :class:`Redactor` first. Known secrets are
masked in every spelling a URL gives them (raw, percent-encoded with either hex case, ``+`` for
a space); :meth:`Redactor.redact_text` also masks secret *shapes* in free text (a URL's
password, ``apikey=`` values, ``Authorization:``/``X-Api-Key:`` header values), so a secret
the configuration never named (one in a redirect target, a library's debug line) is hidden too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

__all__ = ["MASK", "SECRET_PARAM_NAMES", "Redactor"]

MASK = "***"

SECRET_PARAM_NAMES = frozenset(
    {"key", "apikey", "api_key", "token", "access_token", "secret", "password", "signature", "sig"}
)


def _looks_secret(param: str) -> bool:
    # Spelling varies between providers (api-key, X-Api-Key, client_secret, auth_token), so the
    # name is normalised and a secret-sounding last word counts too.
    name = unquote_plus(param).strip().lower().replace("-", "_")
    return name in SECRET_PARAM_NAMES or name.rsplit("_", 1)[-1] in SECRET_PARAM_NAMES


class Redactor:
    """Replaces known secret values, and secret-looking URL parts, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: regex alternation takes the first alternative that matches, so a
        # secret that contains another one is masked whole rather than leaving its tail visible.
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(_any_spelling, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def redact_url(self, url: str) -> str:
        """Return ``url`` with known secrets, userinfo passwords and secret query values masked."""
        # String surgery rather than urlsplit/urlunsplit: the round trip rewrites some URLs
        # (``file:relative`` becomes ``file:///relative``), and the result must still read right.
        url = _USERINFO_PASSWORD.sub(rf"\g<1>{MASK}@", url, count=1)
        head, hash_, fragment = url.partition("#")
        base, question, query = head.partition("?")
        if question:
            query = "&".join(_mask_param(pair) for pair in query.split("&"))
        return self.redact(f"{base}{question}{query}{hash_}{fragment}")

    def redact_text(self, text: str) -> str:
        """Return free text (a log line, a traceback) with known secrets and secret shapes
        masked: URL passwords, secret-looking query values, secret-named header values."""
        text = self.redact(text)
        if "@" in text:
            text = _TEXT_USERINFO_PASSWORD.sub(rf"://\g<1>{MASK}@", text)
        if "=" in text:
            text = _TEXT_QUERY_PARAM.sub(_mask_query_match, text)
        lowered = text.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            text = _mask_secret_fields(text, lowered)
        return text


_USERINFO_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@:]*:)[^/?#]*@")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _any_spelling(secret: str) -> str:
    """A pattern matching ``secret`` raw or percent-encoded in any mix (``%2f`` or ``%2F``, and
    ``+`` or ``%20`` for a space): libraries differ in what they encode and how."""
    parts = []
    for char in secret:
        if char in _UNRESERVED:
            parts.append(re.escape(char))
            continue
        spellings = [re.escape(char)]
        encoded = "".join(
            "%" + "".join(f"[{d.lower()}{d}]" if d.isalpha() else d for d in f"{byte:02X}")
            for byte in char.encode()
        )
        spellings.append(encoded)
        if char == " ":
            spellings.append(r"\+")
        parts.append(f"(?:{'|'.join(spellings)})")
    return "".join(parts)


# In free text a URL ends at whitespace or a quote; the password runs to the last @ before
# the host (an unencoded @ in a password is common enough). The patterns start with a literal
# or a small set of characters where they can: every log record goes through them.
_TEXT_USERINFO_PASSWORD = re.compile(r"://([^\s/?#@:'\"<>]*:)[^\s/?#'\"<>]*@")
# A URL in parentheses or at the end of a sentence keeps its closing punctuation.
_TEXT_QUERY_PARAM = re.compile(
    r"(?P<head>[?&;](?P<name>[^=&#\s'\"<>]+)=)(?P<value>[^&#\s'\"<>]*[^&#\s'\"<>)\].,;:!])"
)
# ``Authorization: Bearer x``, ``'X-Api-Key': 'x'``, ``(b'x-auth-token', b'x')``, ``password=x``:
# a name ending in a secret-sounding word, a separator, maybe an auth scheme, then the value.
# A bare ``key`` is left alone in free text ("key: stops:42" is a cache key, not a secret).
# Matched on the lower-cased text (much faster than an IGNORECASE pattern).
_SECRET_WORDS = ("authorization", "key", "token", "secret", "passw", "pwd")
_TEXT_SECRET_FIELD = re.compile(
    r"(?:authorization|api[_-]?key|[_-]key|token|secret|password|passwd|pwd)(?![\w-])"
    r"(?P<sep>['\"]?\s*[:=]\s*(?:b?['\"])?|['\"]\s*,\s*b?['\"])"
    r"(?:(?:bearer|basic|digest|token|apikey)\s+)?"
    r"(?P<value>[^\s'\",;&)\]}>]+)"
)


def _mask_secret_fields(text: str, lowered: str) -> str:
    if len(lowered) != len(text):  # a character whose lower case is longer: no offsets
        return _TEXT_SECRET_FIELD_ANY_CASE.sub(_mask_value, text)
    pieces, last = [], 0
    for match in _TEXT_SECRET_FIELD.finditer(lowered):
        start, end = match.span("value")
        pieces += [text[last:start], MASK]
        last = end
    return "".join(pieces) + text[last:] if pieces else text


_TEXT_SECRET_FIELD_ANY_CASE = re.compile(_TEXT_SECRET_FIELD.pattern, re.IGNORECASE)


def _mask_value(match: re.Match[str]) -> str:
    start, end = match.span("value")
    whole_start = match.start()
    return match[0][: start - whole_start] + MASK + match[0][end - whole_start :]


def _mask_query_match(match: re.Match[str]) -> str:
    if _looks_secret(match["name"]):
        return f"{match['head']}{MASK}"
    return match[0]


def _mask_param(pair: str) -> str:
    name, sep, value = pair.partition("=")
    if sep and value and _looks_secret(name):
        return f"{name}={MASK}"
    return pair

"""Keep secrets (API keys, tokens, passwords) out of error messages, logs and status pages.

Operators put keys in URLs and headers through ``${VAR}`` in the YAML; anything we show about a
source (its last error, a log line) goes through a :class:`Redactor` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus

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
        variants: set[str] = set()
        for secret in secrets:
            if secret:
                # A secret embedded in a URL shows up percent-encoded, so mask those forms too.
                variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
        # Longest first: regex alternation takes the first alternative that matches, so a
        # secret that contains another one is masked whole rather than leaving its tail visible.
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

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


_USERINFO_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@:]*:)[^/?#]*@")


def _mask_param(pair: str) -> str:
    name, sep, value = pair.partition("=")
    if sep and value and _looks_secret(name):
        return f"{name}={MASK}"
    return pair

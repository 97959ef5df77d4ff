"""Which hosts a source may reach: origins, body URLs and internal addresses.

The operator's config is trusted; what upstreams send is not. Three rules follow, and they
live here so that every connector and the :class:`~aggregator.fetch.Fetcher` apply the same:

* a URL taken from an upstream body (a GBFS ``gbfs.json`` listing feed files, a "next" link)
  stays on the origin of the configured URL whose body named it, or on one of the source's
  ``allowed_origins``; it is never ``file:`` (:class:`UrlFromBody`);
* configured headers (API keys) go only to the configured origin; redirects elsewhere carry
  none (the Fetcher compares :func:`origin_of` per hop);
* a redirect chain that has passed through a public address may not lead to a loopback,
  private, link-local, unique-local or otherwise non-global one (:func:`is_public_address`,
  judged on the address actually connected to, so a DNS name pointing inside is caught too).

Origins are computed with httpx's own URL parser, the one that decides where a request goes,
so that a URL cannot read as one host here and connect to another.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

__all__ = [
    "AddressClassifier",
    "UrlFromBody",
    "is_public_address",
    "literal_address",
    "normalize_origin",
    "origin_of",
]

#: ``(host, port) -> True`` when the address is a public (global) one. The Fetcher takes one,
#: so that tests on 127.0.0.1 can call one port "public" and another "internal".
AddressClassifier = Callable[[str, int], bool]


def origin_of(url: str | httpx.URL) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, normalised (default port dropped); else None.

    ``None`` for ``file:`` and other schemes, and for URLs httpx cannot parse: such a URL is
    never the same origin as anything.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    host = parsed.raw_host.decode("ascii").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parsed.scheme}://{host}" + (f":{parsed.port}" if parsed.port is not None else "")


def normalize_origin(value: str) -> str:
    """``value`` as :func:`origin_of` writes it; ValueError if it is not exactly an origin."""
    origin = origin_of(value)
    trimmed = value.rstrip("/")
    if origin is None or "@" in value or "?" in value or "#" in value:
        raise ValueError("not an origin")
    try:
        path = httpx.URL(trimmed).path
    except httpx.InvalidURL:
        raise ValueError("not an origin") from None
    if path not in ("", "/"):
        raise ValueError("an origin has no path")
    return origin


def literal_address(url: str | httpx.URL) -> tuple[str, int] | None:
    """``(ip, port)`` when the URL's host is an IP address written out; None for a name."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        ipaddress.ip_address(host)
    except (httpx.InvalidURL, UnicodeDecodeError, ValueError):
        return None
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


@functools.lru_cache(maxsize=256)  # the same few upstream addresses, judged at every hop
def is_public_address(host: str, port: int) -> bool:
    """Whether ``host`` (an IP address) is a global one; names and garbage are not public.

    Loopback, RFC 1918 private, link-local (169.254.0.0/16, where cloud metadata services
    answer), unique-local (fc00::/7), shared (100.64.0.0/10), reserved and unspecified
    addresses are all internal; an IPv4-mapped IPv6 address is judged as its IPv4 address.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class UrlFromBody:
    """A URL about to be fetched was read from the body of ``configured_url``.

    Pass one to :meth:`~aggregator.fetch.Fetcher.fetch` as ``from_body``: the Fetcher refuses
    the URL when :meth:`refusal` says so, and sends the configured headers only if the URL is
    on the configured URL's origin (an allowed other origin is fetched without them).
    """

    configured_url: str
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    #: Where the URL was found, for messages: "gbfs.json", "a next link"...
    found_in: str = "the body"
    #: The body came through a public address (``FetchResult.passed_public``): the URL may
    #: then not lead to an internal one, as if the body's fetch had been redirected there.
    from_public: bool = False

    @classmethod
    def of(
        cls, configured_url: str, allowed: Iterable[str], found_in: str, from_public: bool = False
    ) -> UrlFromBody:
        return cls(configured_url, frozenset(allowed), found_in, from_public)

    @property
    def configured_origin(self) -> str | None:
        return origin_of(self.configured_url)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be fetched (plain words), or None when it may."""
        origin = origin_of(url)
        if origin is None:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            what = f"a {scheme}: URL" if scheme.isalnum() else "an unusable URL"
            return f"{self.found_in} names {what}; a URL taken from a body must be http(s)"
        if origin == self.configured_origin or origin in self.allowed_origins:
            return None
        return (
            f"{self.found_in} names a URL on another origin, {origin}; only the configured "
            f"origin ({self.configured_origin or 'none'}) and the source's allowed_origins "
            "are followed"
        )

"""Redirects followed hop by hop under the origin rules of :mod:`aggregator.origins`.

Each hop is sent the configured headers and the validators only if it is on their origin, is
judged on the address it really connected to, and may only lead to another http(s) URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from aggregator.fetch_errors import RefusedURL
from aggregator.redact import Redactor

__all__ = [
    "MAX_REDIRECTS", "REDIRECT_STATUSES", "HopHeaders", "internal_address_refused",
    "peer_address", "redirect_target",
]  # fmt: skip

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # for a GET, all mean "GET there"


@dataclass(frozen=True)
class HopHeaders:
    """What each hop of a redirect chain is sent, decided by the hop's origin."""

    headers: Mapping[str, str]
    headers_origin: str | None  # configured headers go to this origin only
    validators: dict[str, str]
    validators_origin: str | None  # the origin that gave the validators

    def for_origin(self, origin: str | None) -> tuple[dict[str, str], bool]:
        sent = dict(self.headers) if origin is not None and origin == self.headers_origin else {}
        conditional = bool(self.validators) and origin == self.validators_origin
        if conditional:
            sent.update(self.validators)
        return sent, conditional


def peer_address(response: httpx.Response) -> tuple[str, int] | None:
    """The address the response actually came from (None when the transport does not say)."""
    stream = response.extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


def redirect_target(current: httpx.URL, location: str, shown: str, redactor: Redactor) -> httpx.URL:
    """Where a ``Location`` header leads from ``current``; only http(s) is followed."""
    try:
        target = current.join(location.strip())
    except httpx.InvalidURL:
        raise RefusedURL("redirected to an invalid URL", url=shown) from None
    if target.scheme not in ("http", "https"):
        scheme = redactor.redact(target.scheme or "?")
        raise RefusedURL(f"redirected to a {scheme}: URL, which is never followed", url=shown)
    return target


def internal_address_refused(
    how: str, origin: str | None, shown: str, redactor: Redactor
) -> RefusedURL:
    """The refusal of a hop from a public address to an internal one (``how``: what led there)."""
    where = redactor.redact_url(origin or "an unusable URL")
    return RefusedURL(
        f"{how} from a public address to {where}, an internal address; not followed",
        url=shown,
    )

"""What a fetch returns, and the validators that make the next one a conditional GET."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

__all__ = ["FetchResult", "Validators", "conditional_headers", "fetch_result"]


@dataclass(frozen=True)
class Validators:
    """What the previous successful fetch returned, to make the next one conditional."""

    etag: str | None = None
    last_modified: str | None = None
    #: The origin that answered them: they are sent back there only (None: the first hop's).
    origin: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FetchResult:
    url: str
    not_modified: bool
    body: bytes
    content_type: str | None
    validators: Validators
    status: int
    attempts: int
    elapsed: float
    content_hash: str
    #: The answer came through a public address: URLs from its body may not lead inside.
    passed_public: bool = False


def conditional_headers(validators: Validators) -> dict[str, str]:
    """The request headers that let the upstream answer 304 when nothing changed."""
    conditional: dict[str, str] = {}
    if validators.etag:
        conditional["If-None-Match"] = validators.etag
    if validators.last_modified:
        conditional["If-Modified-Since"] = validators.last_modified
    return conditional


def fetch_result(
    url: str,
    status: int,
    body: bytes,
    content_type: str | None,
    validators: Validators,
    attempts: int,
    started: float,
    passed_public: bool = False,
) -> FetchResult:
    return FetchResult(
        url=url,
        not_modified=status == 304,
        body=body,
        content_type=content_type,
        validators=validators,
        status=status,
        attempts=attempts,
        elapsed=time.monotonic() - started,
        content_hash=hashlib.sha256(body).hexdigest() if status != 304 else "",
        passed_public=passed_public,
    )

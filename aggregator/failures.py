"""What the public is told about a failed poll: the class of the failure, never its detail.

A poll's full error ("no such file: /srv/feeds/x.zip", "could not resolve host
feeds.internal", an upstream's own words) tells an outsider which files exist on the server,
which hosts it talks to, what a parser choked on. Public answers (``/v1/sources``, the status
page) carry only a stable code and a fixed sentence from this small vocabulary; the detail,
redacted, stays in the log and the admin API.

=================  ==================================================
code               public text
=================  ==================================================
unreachable        the upstream could not be reached
timeout            the upstream did not answer in time
upstream_status    the upstream answered HTTP <status>
too_large          the body exceeds the size cap
local_file         the local file could not be read
refused_url        a URL or redirect of the upstream was refused
fetch_failed       the feed could not be fetched
parse_failed       the feed could not be parsed
store_failed       the new data could not be saved
internal           an unexpected error occurred
=================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aggregator.fetch_errors import (
    BodyTooLarge,
    FetchError,
    LocalFileError,
    RefusedURL,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

__all__ = ["UNEXPECTED", "Failure", "FailureCode", "failure_of_fetch", "public_text"]


class FailureCode(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    UPSTREAM_STATUS = "upstream_status"
    TOO_LARGE = "too_large"
    LOCAL_FILE = "local_file"
    REFUSED_URL = "refused_url"
    FETCH_FAILED = "fetch_failed"
    PARSE_FAILED = "parse_failed"
    NOTHING_MAPPED = "nothing_mapped"
    STORE_FAILED = "store_failed"
    INTERNAL = "internal"


_TEXT = {
    FailureCode.UNREACHABLE: "the upstream could not be reached",
    FailureCode.TIMEOUT: "the upstream did not answer in time",
    FailureCode.UPSTREAM_STATUS: "the upstream answered with an error status",
    FailureCode.TOO_LARGE: "the body exceeds the size cap",
    FailureCode.LOCAL_FILE: "the local file could not be read",
    FailureCode.REFUSED_URL: "a URL or redirect of the upstream was refused",
    FailureCode.FETCH_FAILED: "the feed could not be fetched",
    FailureCode.PARSE_FAILED: "the feed could not be parsed",
    FailureCode.NOTHING_MAPPED: "no record of the feed could be mapped",
    FailureCode.STORE_FAILED: "the new data could not be saved",
    FailureCode.INTERNAL: "an unexpected error occurred",
}
#: What a status shared by an older process, with no code, shows in public.
UNKNOWN_TEXT = "the last poll failed"


@dataclass(frozen=True)
class Failure:
    """A failed poll's class and, for an error status, the status number."""

    code: FailureCode
    http_status: int | None = None

    @property
    def public(self) -> str:
        return public_text(self.code, self.http_status)


#: A failure nobody classified (a connector bug).
UNEXPECTED = Failure(FailureCode.INTERNAL)


def public_text(code: str | None, http_status: int | None = None) -> str:
    """The sentence public answers show for a failure ``code``."""
    if code == FailureCode.UPSTREAM_STATUS and http_status is not None:
        return f"the upstream answered HTTP {http_status}"
    try:
        return _TEXT[FailureCode(code)]
    except ValueError:
        return UNKNOWN_TEXT


def failure_of_fetch(exc: FetchError) -> Failure:
    """The class of a fetch error. A subclass this module does not know (a connector's own)
    falls back to ``fetch_failed``: saying less is the safe default."""
    if isinstance(exc, UpstreamHTTPError):
        return Failure(FailureCode.UPSTREAM_STATUS, exc.status)
    for kind, code in _FETCH_CODES:
        if isinstance(exc, kind):
            return Failure(code)
    return Failure(FailureCode.FETCH_FAILED)


_FETCH_CODES: tuple[tuple[type[FetchError], FailureCode], ...] = (
    (UpstreamTimeout, FailureCode.TIMEOUT),
    (UpstreamUnreachable, FailureCode.UNREACHABLE),
    (BodyTooLarge, FailureCode.TOO_LARGE),
    (LocalFileError, FailureCode.LOCAL_FILE),
    (RefusedURL, FailureCode.REFUSED_URL),
)

"""Bodies read within their cap: an HTTP answer's stream, a redirect's leftover, a local file."""

from __future__ import annotations

import mimetypes
import os
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from aggregator.fetch_errors import BodyTooLarge, LocalFileError
from aggregator.fetch_result import FetchResult, Validators, fetch_result
from aggregator.redact import Redactor

__all__ = [
    "MAX_REDIRECT_BODY", "body_too_large", "drain_redirect", "human_bytes", "read_capped",
    "read_file_url",
]  # fmt: skip

#: A redirect's body is read (and dropped) up to this size so its connection can be reused.
MAX_REDIRECT_BODY = 64 * 1024


def human_bytes(n: float) -> str:
    """Sizes as the config writes them: ``50000000`` → ``"50 MB"``, ``1048576`` → ``"1 MiB"``."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        # Binary units only for exact binary multiples that are not round decimal ones.
        if n >= 1024**power and n % 1024**power == 0 and n % 1000**power:
            return f"{n / 1024**power:.0f} {unit}"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            break
        n /= 1000
    return f"{n:.0f} {unit}" if float(n).is_integer() else f"{n:.1f} {unit}"


def body_too_large(max_bytes: int, url: str) -> BodyTooLarge:
    return BodyTooLarge(f"body exceeds the {human_bytes(max_bytes)} cap", url=url)


async def read_capped(response: httpx.Response, max_bytes: int, shown: str) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it is known to exceed ``max_bytes``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise body_too_large(max_bytes, shown)
    chunks, size = [], 0
    # aiter_bytes yields decoded bytes, so a small gzip bomb hits the cap as well.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(max_bytes, shown)
        chunks.append(chunk)
    return b"".join(chunks)


async def drain_redirect(response: httpx.Response) -> None:
    """Read a small redirect body to its end, so the connection goes back to the pool; a big
    one is left unread (the connection is then closed, which is all it costs)."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > MAX_REDIRECT_BODY:
            return


def read_file_url(
    url: str,
    shown: str,
    max_bytes: int,
    validators: Validators,
    base_dir: Path | None,
    redactor: Redactor,
) -> FetchResult:
    """A ``file:`` URL's content within ``max_bytes``; its mtime and size are its validator."""
    started = time.monotonic()
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise LocalFileError("file: URLs cannot name another host", url=shown)
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        if base_dir is None:
            raise LocalFileError("a relative file: URL needs a base directory", url=shown)
        path = base_dir / path
    try:
        with path.open("rb") as handle:
            # The stamp comes from the open handle, so a file replaced mid-read is re-read
            # on the next poll rather than missed.
            info = os.fstat(handle.fileno())
            stamp = f"{info.st_mtime_ns}:{info.st_size}"
            if validators.last_modified == stamp:
                return fetch_result(shown, 304, b"", None, validators, 1, started)
            if info.st_size > max_bytes:
                raise body_too_large(max_bytes, shown)
            body = handle.read(max_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError:
        raise LocalFileError(f"no such file: {redactor.redact(str(path))}", url=shown) from None
    except IsADirectoryError:
        raise LocalFileError(f"not a file: {redactor.redact(str(path))}", url=shown) from None
    except OSError as exc:
        reason = redactor.redact(exc.strerror or type(exc).__name__)
        raise LocalFileError(
            f"cannot read {redactor.redact(str(path))}: {reason}", url=shown
        ) from None
    if len(body) > max_bytes:
        raise body_too_large(max_bytes, shown)
    content_type = mimetypes.guess_type(path.name)[0]
    return fetch_result(shown, 200, body, content_type, Validators(last_modified=stamp), 1, started)

"""Save and load a compiled timetable: one uncompressed ``.npz`` (arrays + a JSON entry).

Uncompressed, because loading is then a plain read of each array, which is what lets a
restart skip compiling a feed whose content hash has not changed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import CacheFormatError, LoadIssue
from .timetable import ARRAY_FIELDS, FORMAT_VERSION, STRING_FIELDS, Timetable

_META = "__meta__"


def save(tt: Timetable, path: str | os.PathLike[str]) -> None:
    """Write ``tt`` to ``path``; a crash mid-write leaves any previous file intact."""
    target = Path(path)
    meta = {
        "format_version": FORMAT_VERSION,
        "day0": tt.day0,
        "source_hash": tt.source_hash,
        "feed_info": tt.feed_info,
        "issues": [[i.file, i.line, i.code, i.message, i.severity] for i in tt.issues],
        "issue_counts": tt.issue_counts,
        "strings": {name: getattr(tt, name) for name in STRING_FIELDS},
        "trip_extra": tt.trip_extra,
    }
    arrays = {name: np.ascontiguousarray(getattr(tt, name)) for name in ARRAY_FIELDS}
    arrays[_META] = np.frombuffer(
        json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode(), dtype=np.uint8
    )
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike[str]) -> Timetable:
    """Read a timetable written by :func:`save`; raises :class:`CacheFormatError` if unusable."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(bytes(data[_META]).decode())
            if meta.get("format_version") != FORMAT_VERSION:
                raise CacheFormatError(
                    f"{path}: format version {meta.get('format_version')}, "
                    f"expected {FORMAT_VERSION}"
                )
            arrays = {
                name: data[name].astype(dtype, copy=False) for name, dtype in ARRAY_FIELDS.items()
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CacheFormatError(f"{path}: not a saved timetable ({exc})") from exc
    return Timetable(
        **meta["strings"],
        **arrays,
        day0=meta["day0"],
        source_hash=meta["source_hash"],
        feed_info=meta["feed_info"],
        issues=[LoadIssue(*item) for item in meta["issues"]],
        issue_counts=meta["issue_counts"],
        trip_extra=meta.get("trip_extra", {}),
    )


def load_if_current(path: str | os.PathLike[str], source_hash: str) -> Timetable | None:
    """The saved timetable if it exists, is readable and was compiled from ``source_hash``."""
    if not Path(path).exists():
        return None
    try:
        tt = load(path)
    except CacheFormatError:
        return None
    return tt if tt.source_hash == source_hash else None

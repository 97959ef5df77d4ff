"""Hostile GTFS zips built on the fly: a real feed whose stop_times.txt is one endless line."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

MB = 1024 * 1024
#: What the endless line repeats: stop-time fields, commas and all, never a newline.
LINE_UNIT = b"t1,08:00:00,08:00:00,70011,1,"


def write_long_line_feed(path: Path, good_zip: bytes, line_bytes: int) -> Path:
    """``good_zip`` with stop_times.txt replaced by its header and one line of ``line_bytes``.

    The line is streamed into the zip 1 MB at a time, so building it never holds it whole;
    being repetitive it deflates about 1000 to 1 (1.5 GB of line: a 1.5 MB zip).
    """
    chunk = LINE_UNIT * (MB // len(LINE_UNIT))
    with (
        zipfile.ZipFile(io.BytesIO(good_zip)) as good,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out,
    ):
        for info in good.infolist():
            if info.filename.rsplit("/", 1)[-1] != "stop_times.txt":
                out.writestr(info.filename, good.read(info))
                continue
            header = good.read(info).split(b"\n", 1)[0].rstrip(b"\r")
            with out.open(info.filename, "w", force_zip64=True) as member:
                member.write(header + b"\r\n")
                left = line_bytes
                while left > 0:
                    member.write(chunk[:left])
                    left -= len(chunk)
                member.write(b"\r\n")
    return path

"""Read the CSV tables of a GTFS zip column-wise, with caps on inflated size and line length.

Tables are read in chunks of rows and handed out as columns (tuples of strings), so the
compiler can turn each column into a numpy array without building one object per row.
The csv module does the parsing: it copes with quoted fields, CRLF and embedded commas;
``utf-8-sig`` drops a byte-order mark; undecodable bytes are replaced rather than fatal.

Entries are streamed out of the zip, never inflated whole, and two caps bound what a hostile
zip can cost: the bytes inflated across the feed (``max_uncompressed_bytes``) and the length
of one line (``max_line_bytes``), checked while a line is still being gathered, so a single
endless line stops the read as soon as it passes the cap instead of growing a buffer.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import ctypes
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path

import numpy as np

from .errors import FeedTooLargeError, GtfsError, IssueLog, LineTooLongError, MissingFileError
from .fastcsv import ByteBlock, IdIndex, split_fields
from .parse import Interner, Memo, parse_float

#: Files a timetable cannot do without (plus one of :data:`CALENDAR_FILES`).
REQUIRED_FILES = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
CALENDAR_FILES = ("calendar.txt", "calendar_dates.txt")
#: Files this engine reads; only these count against the size cap.
USED_FILES = (
    *REQUIRED_FILES,
    *CALENDAR_FILES,
    "frequencies.txt",
    "feed_info.txt",
    "shapes.txt",
)

#: Room for the largest city and regional feeds; a national feed sets its own (Germany's
#: DELFI inflates to 3.1 GB of the files read here). docs/OPERATING.md gives the figures.
DEFAULT_MAX_UNCOMPRESSED_BYTES = 2_000_000_000
#: Real feeds' lines are a few hundred bytes (541 at most in the feeds under test).
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_CHUNK_ROWS = 1 << 18
DEFAULT_BLOCK_BYTES = 1 << 24

# Some real feeds carry very long fields (shape-like blobs in extension columns).
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(slots=True)
class Chunk:
    """A run of rows of one table, as columns.

    ``columns`` maps each requested column to a tuple of strings; a column the file lacks
    is absent from the mapping. ``lines[i]`` is the line number of row ``i`` (the header is
    line 1); it is exact unless a quoted field spans several lines earlier in the file.
    """

    file: str
    columns: dict[str, Sequence[str]]
    lines: Sequence[int]
    _filled: dict[tuple[str, str], Sequence[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    def get(self, name: str, default: str = "") -> Sequence[str]:
        """The column ``name``, or a column of ``default`` values if the file lacks it."""
        col = self.columns.get(name)
        if col is not None:
            return col
        # Cached, so callers may index get(...)[i] in a loop without rebuilding it.
        key = (name, default)
        if key not in self._filled:
            self._filled[key] = [default] * len(self.lines)
        return self._filled[key]

    # The converters below mirror ByteBlock's, so callers need not know which they hold.
    def has(self, name: str) -> bool:
        """Whether the file has column ``name``."""
        return name in self.columns

    def text(self, name: str, rows: Sequence[int]) -> list[str]:
        """Values of column ``name`` at ``rows``."""
        col = self.get(name)
        return [col[i] for i in rows]

    def ids(self, name: str, index: IdIndex) -> np.ndarray:
        """Index of each value among the known ids (-1 unknown)."""
        return index.lookup.convert(self.get(name))

    def numbers(self, name: str, memo: Memo, time: bool) -> np.ndarray:
        """Column ``name`` through ``memo``'s parser (time or integer)."""
        return memo.convert(self.get(name))

    def floats(self, name: str) -> np.ndarray:
        """Column ``name`` as float64, NaN where empty or unparsable."""
        col = self.get(name)
        return np.fromiter(map(parse_float, col), dtype=np.float64, count=len(col))

    def text_codes(self, name: str, interner: Interner) -> np.ndarray:
        """Codes into ``interner`` for a text column, -1 where empty."""
        out = np.full(len(self), -1, np.int32)
        if name not in self.columns:
            return out
        col = self.columns[name]
        filled = [i for i, value in enumerate(col) if value]
        if filled:
            # Empty values are never interned, as on the vectorised path.
            out[filled] = interner.convert([col[i] for i in filled])
        return out


class _Budget:
    """Bytes still allowed to be inflated, shared by every file of one feed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def consume(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise FeedTooLargeError(
                f"GTFS feed inflates beyond {self.limit} bytes (while reading {name}); "
                "raise max_uncompressed_bytes if the feed is really that large"
            )


class _LineCap:
    """Follows line lengths across the chunks of a stream; raises past the cap.

    Only the line running over a chunk's edge needs counting: a chunk no longer than the
    cap cannot hold a whole line longer than it (a longer chunk is checked line by line).
    """

    def __init__(self, name: str, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.lines = 0  # complete lines seen so far
        self.partial = 0  # bytes of the line still open at the end of the last chunk

    def feed(self, data: bytes) -> None:
        first = data.find(b"\n")
        if first < 0:
            # Old Mac files end lines with a lone CR, and so does the csv module: a chunk of
            # such lines restarts the count without numbering them.
            cr = data.rfind(b"\r")
            self.partial = len(data) - 1 - cr if cr >= 0 else self.partial + len(data)
            if self.partial >= self.cap:
                raise LineTooLongError(self.name, self.lines + 1, self.cap)
            return
        if self.partial + first + 1 > self.cap:
            raise LineTooLongError(self.name, self.lines + 1, self.cap)
        if len(data) > self.cap:
            _check_lines(np.diff(_newlines(data)), self.name, self.lines + 2, self.cap)
        self.lines += data.count(b"\n")
        self.partial = len(data) - 1 - data.rfind(b"\n")


class _CappedStream(io.RawIOBase):
    """Counts bytes as they are inflated (declared sizes in a zip can lie), and line lengths."""

    def __init__(
        self, raw: io.BufferedIOBase, budget: _Budget, name: str, lines: _LineCap | None = None
    ) -> None:
        self._raw = raw
        self._budget = budget
        self._name = name
        self._lines = lines

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        self._budget.consume(n, self._name)
        if self._lines is not None:
            self._lines.feed(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class GtfsZip:
    """A GTFS zip opened for reading: bytes or a path in, chunks of columns out."""

    def __init__(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                self._zip = zipfile.ZipFile(io.BytesIO(bytes(source)))
            else:
                self._zip = zipfile.ZipFile(Path(source))
        except (zipfile.BadZipFile, OSError) as exc:
            raise GtfsError(f"not a readable zip file: {exc}") from exc
        self._members = self._index_members()
        self._budget = _Budget(max_uncompressed_bytes)
        self._max_line = max_line_bytes
        declared = sum(self._members[n].file_size for n in USED_FILES if n in self._members)
        if declared > max_uncompressed_bytes:
            raise FeedTooLargeError(
                f"GTFS feed declares {declared} uncompressed bytes, "
                f"more than the cap of {max_uncompressed_bytes} (max_uncompressed_bytes)"
            )

    def _index_members(self) -> dict[str, zipfile.ZipInfo]:
        """Map file names to zip entries; files inside one sub-folder are accepted too."""
        members: dict[str, tuple[int, zipfile.ZipInfo]] = {}
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            parts = info.filename.replace("\\", "/").split("/")
            if parts[0] == "__MACOSX":
                continue
            name = parts[-1].lower()
            depth = len(parts)
            # The shallowest copy wins, so a stray nested backup never shadows the real file.
            if name not in members or depth < members[name][0]:
                members[name] = (depth, info)
        return {name: info for name, (_, info) in members.items()}

    def close(self) -> None:
        """Release the zip."""
        self._zip.close()

    def __enter__(self) -> GtfsZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, name: str) -> bool:
        """Whether the zip holds file ``name`` (e.g. ``"frequencies.txt"``)."""
        return name in self._members

    def check_required(self) -> None:
        """Raise :class:`MissingFileError` naming every required file that is absent."""
        missing = [name for name in REQUIRED_FILES if not self.has(name)]
        if not any(self.has(name) for name in CALENDAR_FILES):
            missing.append("calendar.txt or calendar_dates.txt")
        if missing:
            raise MissingFileError(missing)

    def iter_chunks(
        self,
        name: str,
        columns: Sequence[str],
        issues: IssueLog,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> Iterator[Chunk]:
        """Yield the rows of ``name`` in chunks, keeping only ``columns`` that exist."""
        info = self._members.get(name)
        if info is None:
            return
        # The csv module gathers a whole line before parsing it: the stream counts line
        # lengths as it inflates, so an endless line stops at the cap.
        with _read_errors(name), self._open(info, _LineCap(name, self._max_line)) as binary:
            text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip().lstrip("\ufeff") for h in header]
            wanted = {c: header.index(c) for c in columns if c in header}
            yield from _row_chunks(reader, name, 2, len(header), wanted, issues, chunk_rows)

    def iter_blocks(
        self,
        name: str,
        columns: Sequence[str],
        issues: IssueLog,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        progress: Callable[[float], None] | None = None,
    ) -> Iterator[Chunk | ByteBlock]:
        """Like :meth:`iter_chunks`, but plain blocks come as vectorised :class:`ByteBlock`.

        ``progress`` is told the share of the file read so far (0 to 1), block by block.

        The file is read in blocks of about ``block_bytes`` cut at line ends, so memory stays
        bounded whatever the file size. A block with quotes or ragged lines is parsed by the
        csv module (a quoted field spanning two blocks would be reported as broken rows). A
        line longer than ``max_line_bytes`` raises :class:`LineTooLongError`, wherever it
        falls in a block: a partial line is never grown past the cap.
        """
        info = self._members.get(name)
        if info is None:
            return
        with _read_errors(name), self._open(info) as binary:
            data = binary.read(block_bytes)
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
            while b"\n" not in data:
                if len(data) >= self._max_line:
                    raise LineTooLongError(name, 1, self._max_line)
                more = binary.read(block_bytes)
                if not more:
                    break
                data += more
            head, _, data = data.partition(b"\n")
            if len(head) >= self._max_line:
                raise LineTooLongError(name, 1, self._max_line)
            header_text = head.decode("utf-8", "replace").strip("\r")
            header = [h.strip() for h in next(csv.reader([header_text]), [])]
            if not header:
                return
            width = len(header)
            wanted = {c: header.index(c) for c in columns if c in header}
            line, eof = 2, False
            read = len(head) + len(data)
            while True:
                # Top the carried-over partial line up to one block (the first block is
                # already there), so blocks stay near block_bytes.
                if not eof and len(data) < block_bytes:
                    more = binary.read(block_bytes - len(data))
                    eof = not more
                    data += more
                    read += len(more)
                    del more
                    if progress is not None and info.file_size:
                        progress(1.0 if eof else min(1.0, read / info.file_size))
                if eof:
                    # Trailing blank lines would make the last block look ragged.
                    block, data = data.rstrip(b"\r\n") + b"\n", b""
                    if block == b"\n":
                        return
                else:
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        # A line longer than a block: read on until it ends, unless it is
                        # already past the cap (data holds that one partial line, no more).
                        if len(data) >= self._max_line:
                            raise LineTooLongError(name, line, self._max_line)
                        more = binary.read(block_bytes)
                        eof = not more
                        data += more
                        read += len(more)
                        del more
                        continue
                    block, data = data[: cut + 1], data[cut + 1 :]
                if b"\r" in block:
                    block = block.replace(b"\r", b"")
                split = split_fields(block, width)
                if split is None:
                    if len(block) > self._max_line:
                        _check_lines(
                            np.diff(_newlines(block), prepend=-1), name, line, self._max_line
                        )
                    reader = csv.reader(io.StringIO(block.decode("utf-8", "replace")))
                    lines = block.count(b"\n")
                    del block
                    yield from _row_chunks(
                        reader, name, line, width, wanted, issues, line_offset=line - 1
                    )
                else:
                    del block
                    buf, bounds = split
                    del split
                    _check_lines(bounds[:, -1] - bounds[:, 0], name, line, self._max_line)
                    lines = len(bounds)
                    yield ByteBlock(name, buf, bounds, wanted, line)
                    del buf, bounds
                line += lines
                if eof and not data:
                    return

    def _open(self, info: zipfile.ZipInfo, lines: _LineCap | None = None) -> io.BufferedReader:
        """A binary stream of one entry whose inflated bytes count against the cap."""
        raw = _CappedStream(self._zip.open(info), self._budget, info.filename, lines)
        return io.BufferedReader(raw)

    def read_table(self, name: str, columns: Sequence[str], issues: IssueLog) -> Chunk:
        """Read a whole (small) table as one chunk; an absent file gives zero rows."""
        merged: dict[str, list[str]] = {}
        lines: list[int] = []
        for chunk in self.iter_chunks(name, columns, issues):
            for c, col in chunk.columns.items():
                merged.setdefault(c, []).extend(col)
            lines.extend(chunk.lines)
        return Chunk(name, dict(merged), lines)


def _row_chunks(
    reader: Iterator[list[str]],
    name: str,
    first_line: int,
    width: int,
    wanted: dict[str, int],
    issues: IssueLog,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    line_offset: int = 0,
) -> Iterator[Chunk]:
    """Group csv rows into chunks of columns; ``reader.line_num`` keeps line numbers exact.

    ``line_offset`` + ``reader.line_num`` is the file line number of the last line read.
    """
    line = first_line
    base = line_offset
    while True:
        rows = list(islice(reader, chunk_rows))
        if not rows:
            return
        first = line
        line = base + reader.line_num + 1  # type: ignore[attr-defined]
        lines: Sequence[int]
        if set(map(len, rows)) == {width}:
            lines = range(first, first + len(rows))
        else:
            rows, lines = _repair_rows(rows, first, width, name, issues)
            if not rows:
                continue
        # One itemgetter pass per wanted column: faster than zip(*rows), and unwanted
        # columns are never materialised.
        yield Chunk(name, {c: list(map(itemgetter(i), rows)) for c, i in wanted.items()}, lines)


def _newlines(block: bytes) -> np.ndarray:
    """Positions of the newlines in ``block``."""
    return np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\n"))


def _check_lines(lengths: np.ndarray, name: str, first_line: int, cap: int) -> None:
    """Raise :class:`LineTooLongError` for the first of these lines (newline included) over cap."""
    over = np.flatnonzero(lengths > cap)
    if len(over):
        raise LineTooLongError(name, first_line + int(over[0]), cap)


@contextmanager
def _read_errors(name: str) -> Iterator[None]:
    """Turn a corrupt entry (bad CRC, truncated deflate stream, bad CSV) into a GtfsError.

    A damaged header can also claim an unknown compression method (NotImplementedError) or
    encryption (RuntimeError from zipfile): the entry is just as unreadable.
    """
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, csv.Error, NotImplementedError) as exc:
        raise GtfsError(f"{name}: cannot be read ({exc})") from exc
    except RuntimeError as exc:
        if "encrypted" not in str(exc):
            raise
        raise GtfsError(f"{name}: cannot be read (it claims to be encrypted)") from exc


def _repair_rows(
    rows: list[list[str]], first: int, width: int, name: str, issues: IssueLog
) -> tuple[list[list[str]], list[int]]:
    """Drop blank lines and pad or trim rows whose field count differs from the header."""
    kept: list[list[str]] = []
    lines: list[int] = []
    for i, row in enumerate(rows):
        n = len(row)
        if n == 0 or (n == 1 and not row[0].strip()):
            continue
        if n != width:
            issues.add(
                name,
                first + i,
                "wrong_field_count",
                f"row has {n} fields, header has {width}",
                "warning",
            )
            row = (row + [""] * (width - n)) if n < width else row[:width]
        kept.append(row)
        lines.append(first + i)
    return kept, lines


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS after the compile's temporary arrays.

    glibc raises its mmap threshold after big frees, so the many block-sized temporaries
    end up on the heap and stay resident once freed (10 M stop times: ~930 MB resident
    before, ~580 MB after). Elsewhere (musl, macOS) this is a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)

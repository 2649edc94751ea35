"""Bounds on what reading one input may cost, checked before the parser sees the bytes.

- ``read_bounded`` reads a path (a file, a pipe, a device) and stops one byte
  past the limit, whatever ``stat()`` says: ``/dev/zero`` reports size 0.
- ``gunzip_bounded`` inflates gzip in a stream and stops at the limit, so a
  small file that unpacks to gigabytes costs at most the limit in memory.
- ``scan_lines`` finds, in one vectorised pass, lines longer than the line
  limit, rows with more fields than the column limit and NUL bytes, so a
  one-line file of millions of columns is refused in milliseconds instead of
  pinning a worker in the CSV parser.
- ``parse_gate`` bounds how many files are parsed at once, in one process or,
  given a folder, among every process on the machine that uses it (the web
  server's workers); a further one waits a little and is then told the server
  is busy.
"""

from __future__ import annotations

import fcntl
import io
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.config import ENV_MAX_COLUMNS, ENV_MAX_LINE_KB, InputLimits
from ml.errors import MAX_EXAMPLE_ROWS, Problem, ServerBusy, ValidationError

READ_CHUNK = 1 << 20
GZIP_INPUT_CHUNK = 64 << 10
SCAN_CHUNK = 1 << 20  # the scan holds a few times this (an int32 count per byte)
NEWLINE = 10
NUL = 0

log = logging.getLogger(__name__)


def _fail(message: str, source: str | None) -> ValidationError:
    return ValidationError([Problem(message)], source=source)


def _size(n_bytes: int) -> str:
    from ml.data.reading import format_size  # reading imports this module

    return format_size(n_bytes)


def read_bounded(path: Path, max_bytes: int, source: str | None) -> bytes:
    """The bytes of ``path``, reading at most ``max_bytes + 1``; ``ValidationError`` past the limit.

    A regular file whose size is already over the limit is refused without
    reading it; pipes and devices are read until the limit is passed.
    """
    try:
        with path.open("rb", buffering=0) as stream:
            if path.is_file():
                size = path.stat().st_size
                if size > max_bytes:
                    from ml.data.reading import _size_message

                    raise _fail(_size_message(size, max_bytes), source)
            buffer = io.BytesIO()
            while buffer.tell() <= max_bytes:
                chunk = stream.read(min(READ_CHUNK, max_bytes + 1 - buffer.tell()))
                if not chunk:
                    break
                buffer.write(chunk)
    except PermissionError as exc:
        raise _fail(f"the file cannot be read: permission denied ({path.name})", source) from exc
    except IsADirectoryError as exc:
        raise _fail(f"{path} is a folder, not a file", source) from exc
    except OSError as exc:
        raise _fail(f"the file cannot be read ({exc.strerror or exc})", source) from exc
    if buffer.tell() > max_bytes:
        raise _fail(
            f"the input holds more than the limit of {_size(max_bytes)} (reading stopped there; "
            "it is a pipe or device, or it grew while being read)",
            source,
        )
    return buffer.getvalue()


def gunzip_bounded(data: bytes, limit: int, source: str | None) -> bytes:
    """Inflate gzip data (one or more members) in a stream, refusing more than ``limit`` bytes of output.

    Feeds zlib small pieces of input and never asks for more output than the
    room left under the limit, so memory stays about ``limit``, whatever the
    compression ratio.
    """
    out = io.BytesIO()  # its getvalue() hands over the buffer: no second copy of the output
    view = memoryview(data)
    position = 0
    try:
        while position < len(view):
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof and position < len(view):
                pending: bytes | memoryview = view[position : position + GZIP_INPUT_CHUNK]
                position += len(pending)
                while pending and not inflater.eof:
                    out.write(inflater.decompress(pending, min(READ_CHUNK, limit + 1 - out.tell())))
                    if out.tell() > limit:
                        raise _fail(f"the gzip file unpacks to more than the limit of {_size(limit)}", source)
                    pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise _fail("the gzip file is damaged or truncated (it ends before its last block)", source)
            position -= len(inflater.unused_data)  # the next member starts there
            rest = view[position:]
            if len(rest) > 0 and bytes(rest[:2]) != b"\x1f\x8b":
                if not bytes(rest).strip(b"\x00"):
                    break  # zero padding after the last member, as some tools write
                raise _fail("the gzip file is damaged or truncated (unexpected bytes after its end)", source)
    except zlib.error as exc:
        raise _fail(f"the gzip file is damaged or truncated ({exc})", source) from exc
    return out.getvalue()


@dataclass
class _Rows:
    """1-based data rows found by the scan (a few examples and the total)."""

    rows: list[int] = field(default_factory=list)
    count: int = 0

    def add(self, line_numbers: np.ndarray) -> None:
        """``line_numbers`` are 0-based lines of the file (0 is the header, so line n is data row n)."""
        self.count += len(line_numbers)
        room = MAX_EXAMPLE_ROWS - len(self.rows)
        if room > 0:
            self.rows += [int(n) for n in line_numbers[:room]]

    def problem(self, message: str) -> Problem | None:
        if not self.count:
            return None
        return Problem(message, rows=tuple(max(r, 1) for r in self.rows), count=self.count)


def check_header(data: bytes, delimiter: str, limits: InputLimits, source: str | None) -> None:
    """Refuse a header with more columns than the column limit, or longer than the line limit.

    Reads at most one line limit of bytes, so a header of millions of columns
    costs no more than a short one.
    """
    end = data.find(b"\n", 0, limits.max_line_bytes + 1)
    header = data[: end if end >= 0 else limits.max_line_bytes + 1]
    n_columns = header.count(delimiter.encode("utf-8")) + 1
    too_long = end < 0 and len(data) > limits.max_line_bytes
    if n_columns > limits.max_columns:
        counted = f"more than {n_columns - 1:,}" if too_long else f"{n_columns:,}"
        raise _fail(
            f"the header has {counted} columns, over the limit of {limits.max_columns:,} columns, "
            f"set by {ENV_MAX_COLUMNS}",
            source,
        )
    if too_long:
        raise _fail(
            f"the header line is longer than the limit of {_size(limits.max_line_bytes)} per line, "
            f"set by {ENV_MAX_LINE_KB}; is this a CSV file with one event per line?",
            source,
        )


@dataclass(frozen=True)
class LineScan:
    """What ``scan_lines`` found: problems, and rows that may hold more fields than the header."""

    problems: list[Problem]
    # (0-based line, start byte, end byte) of rows with more raw delimiters than the header (at most a few).
    wider_than_header: list[tuple[int, int, int]]


MAX_WIDER_ROWS = 1000


def scan_lines(data: bytes, delimiter: str, limits: InputLimits, header_fields: int | None = None) -> LineScan:
    """Rows longer than the line limit, with more fields than the column limit, or holding a NUL byte.

    Counts delimiters without regard to quotes, so a row is flagged only when
    even its raw delimiter count passes the column limit; rows with more raw
    fields than ``header_fields`` are returned for an exact, quote-aware check.
    One pass over the bytes in chunks: memory stays a few times the chunk size.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    separator = ord(delimiter)
    long_lines, wide_rows, nul_rows = _Rows(), _Rows(), _Rows()
    wider: list[tuple[int, int, int]] = []
    line_start = 0  # byte offset where the current line began
    line_fields = 1  # fields so far on the current line (delimiters + 1)
    lines_before = 0  # complete lines before the current chunk
    for offset in range(0, len(array), SCAN_CHUNK):
        chunk = array[offset : offset + SCAN_CHUNK]
        ends = np.flatnonzero(chunk == NEWLINE)
        # Line lengths: from each line's start to its newline (the last, unfinished line is carried over).
        starts = np.concatenate(([line_start - offset], ends[:-1] + 1)) if len(ends) else np.zeros(0, np.int64)
        lengths = ends - starts
        long_lines.add(np.flatnonzero(lengths > limits.max_line_bytes) + lines_before)
        counts = np.cumsum(chunk == separator, dtype=np.int32)
        at_end = counts[ends] if len(ends) else np.zeros(0, np.int64)
        per_line = np.diff(np.concatenate(([0], at_end)))
        if len(per_line):
            per_line[0] += line_fields - 1
        wide_rows.add(np.flatnonzero(per_line + 1 > limits.max_columns) + lines_before)
        if header_fields is not None and len(wider) < MAX_WIDER_ROWS:
            for index in np.flatnonzero(per_line + 1 > header_fields)[: MAX_WIDER_ROWS - len(wider)]:
                if index + lines_before:  # not the header itself
                    wider.append((int(index + lines_before), int(starts[index] + offset), int(ends[index] + offset)))
        nuls = np.flatnonzero(chunk == NUL)
        if len(nuls):
            nul_rows.add(np.unique(np.searchsorted(ends, nuls)) + lines_before)
        tail_delimiters = int(counts[-1] - (at_end[-1] if len(at_end) else 0)) if len(counts) else 0
        line_fields = tail_delimiters + 1 if len(ends) else line_fields + tail_delimiters
        line_start = offset + int(ends[-1]) + 1 if len(ends) else line_start
        lines_before += len(ends)
    last_length = len(array) - line_start
    if last_length > limits.max_line_bytes:
        long_lines.add(np.array([lines_before]))
    if line_fields > limits.max_columns and last_length:
        wide_rows.add(np.array([lines_before]))
    if header_fields is not None and line_fields > header_fields and last_length and lines_before:
        wider.append((lines_before, line_start, len(array)))
    found = [
        long_lines.problem(
            f"line longer than the limit of {_size(limits.max_line_bytes)} per line, set by {ENV_MAX_LINE_KB}"
        ),
        wide_rows.problem(f"more fields than the limit of {limits.max_columns:,} columns, set by {ENV_MAX_COLUMNS}"),
        nul_rows.problem("a NUL byte (0x00), which text never holds: the file is damaged or not CSV text"),
    ]
    return LineScan([p for p in found if p is not None], wider[:MAX_WIDER_ROWS])


def _busy(slots: int, started: float) -> ServerBusy:
    waited = time.monotonic() - started
    return ServerBusy(
        f"the server is busy reading {slots} other file(s) (waited {waited:.0f} s); try again in a minute"
    )


class ParseGate:
    """At most ``slots`` parses at once in this process; the next waits, then hears the server is busy."""

    def __init__(self, slots: int):
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots)

    @contextmanager
    def slot(self, wait_s: float) -> Iterator[None]:
        started = time.monotonic()
        if not self._semaphore.acquire(timeout=wait_s):
            raise _busy(self.slots, started)
        try:
            yield
        finally:
            self._semaphore.release()


class SharedParseGate:
    """At most ``slots`` parses at once among all processes that share ``directory`` (one machine).

    Each place is a lock file held with ``flock`` while a parse runs; the
    kernel drops the lock when its holder exits, so a killed worker never keeps
    a place. Memory is a machine's, so this is the bound that matters when a
    server runs several worker processes. If the folder cannot be used (a
    read-only or vanished cache), the process-wide gate stands in.
    """

    POLL_S = 0.05

    def __init__(self, slots: int, directory: Path):
        self.slots = slots
        self.directory = Path(directory)

    def _try_place(self) -> object | None:
        for index in range(self.slots):
            handle = open(self.directory / f"slot-{index}.lock", "a")  # noqa: SIM115 - held while the parse runs
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return handle
        return None

    @contextmanager
    def slot(self, wait_s: float) -> Iterator[None]:
        started = time.monotonic()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = self._try_place()
            while handle is None:
                if time.monotonic() - started >= wait_s:
                    raise _busy(self.slots, started)
                time.sleep(self.POLL_S)
                handle = self._try_place()
        except OSError as exc:
            log.warning("the parse places in %s cannot be used (%s); bounding parses per process", self.directory, exc)
            with parse_gate(self.slots).slot(max(0.0, wait_s - (time.monotonic() - started))):
                yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


_GATES: dict[tuple[int, Path | None], ParseGate | SharedParseGate] = {}
_GATES_LOCK = threading.Lock()


def parse_gate(slots: int, directory: Path | None = None) -> ParseGate | SharedParseGate:
    """The gate with ``slots`` places: process-wide, or machine-wide among the processes sharing ``directory``."""
    key = (slots, Path(directory) if directory is not None else None)
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = ParseGate(slots) if directory is None else SharedParseGate(slots, Path(directory))
        return gate
